#include "wristssl/metrics/localisation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/util/csv.h"

using nlohmann::json;

namespace wristssl::metrics {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

int64_t weight_of(const std::vector<int64_t>& w, size_t i) { return w.empty() ? 1 : w[i]; }

void check_weights(const std::vector<LocalisedImage>& images, const std::vector<int64_t>& w) {
  if (!w.empty() && w.size() != images.size())
    throw std::invalid_argument("localisation: " + std::to_string(w.size()) + " weights for " +
                                std::to_string(images.size()) + " images");
}

// One predicted box in the global ranking, with whether it counted as found.
struct Ranked {
  double score;
  size_t image;
  bool hit;
};

// Each image's boxes, strongest first, matched greedily to its true boxes: by IoU >= iou (the best
// unmatched true box) when `by_centre` is false, else by the centre lying inside an unmatched true
// box (the one of largest IoU). The hit flags do not depend on the weights.
std::vector<Ranked> rank_and_match(const std::vector<LocalisedImage>& images, double iou,
                                   bool by_centre) {
  std::vector<Ranked> all;
  for (size_t i = 0; i < images.size(); ++i) {
    const LocalisedImage& im = images[i];
    std::vector<data::ScoredBox> boxes = im.boxes;
    std::stable_sort(
        boxes.begin(), boxes.end(),
        [](const data::ScoredBox& a, const data::ScoredBox& b) { return a.score > b.score; });
    std::vector<char> matched(im.truth.size(), 0);
    for (const data::ScoredBox& b : boxes) {
      int best = -1;
      double best_iou = -1;
      for (size_t t = 0; t < im.truth.size(); ++t) {
        if (matched[t]) continue;
        const double o = data::iou(b.box, im.truth[t]);
        const bool ok = by_centre ? data::contains(im.truth[t], b.box.cx(), b.box.cy()) : o >= iou;
        if (ok && o > best_iou) {
          best = static_cast<int>(t);
          best_iou = o;
        }
      }
      if (best >= 0) matched[best] = 1;
      all.push_back({b.score, i, best >= 0});
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  return all;
}

int64_t true_box_count(const std::vector<LocalisedImage>& images, const std::vector<int64_t>& w) {
  int64_t n = 0;
  for (size_t i = 0; i < images.size(); ++i)
    n += weight_of(w, i) * static_cast<int64_t>(images[i].truth.size());
  return n;
}

// The (false positives, true positives) after each distinct score, weighted.
std::vector<std::pair<int64_t, int64_t>> operating_points(const std::vector<Ranked>& ranked,
                                                          const std::vector<int64_t>& w) {
  std::vector<std::pair<int64_t, int64_t>> points;
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < ranked.size(); ++k) {
    const int64_t wk = weight_of(w, ranked[k].image);
    (ranked[k].hit ? tp : fp) += wk;
    if (k + 1 == ranked.size() || ranked[k + 1].score != ranked[k].score)
      points.push_back({fp, tp});
  }
  return points;
}

double ap_of(const std::vector<Ranked>& ranked, int64_t truth, const std::vector<int64_t>& w) {
  if (truth == 0) return kNaN;
  std::vector<double> recall, precision;
  for (const auto& [fp, tp] : operating_points(ranked, w)) {
    if (tp + fp == 0) continue;
    recall.push_back(static_cast<double>(tp) / truth);
    precision.push_back(static_cast<double>(tp) / (tp + fp));
  }
  for (size_t k = precision.size(); k-- > 1;)
    precision[k - 1] = std::max(precision[k - 1], precision[k]);
  double sum = 0;
  for (int r = 0; r <= 100; ++r) {
    const double at = r / 100.0;
    const auto it = std::lower_bound(recall.begin(), recall.end(), at - 1e-12);
    if (it != recall.end()) sum += precision[static_cast<size_t>(it - recall.begin())];
  }
  return sum / 101;
}

std::vector<double> froc_of(const std::vector<Ranked>& ranked, int64_t truth, int64_t image_count,
                            const std::vector<double>& rates, const std::vector<int64_t>& w) {
  std::vector<double> out(rates.size(), truth == 0 ? kNaN : 0.0);
  if (truth == 0 || image_count == 0) return out;
  for (const auto& [fp, tp] : operating_points(ranked, w)) {
    const double fppi = static_cast<double>(fp) / image_count;
    for (size_t r = 0; r < rates.size(); ++r) {
      if (fppi <= rates[r]) out[r] = std::max(out[r], static_cast<double>(tp) / truth);
    }
  }
  return out;
}

int64_t image_count(const std::vector<LocalisedImage>& images, const std::vector<int64_t>& w) {
  int64_t n = 0;
  for (size_t i = 0; i < images.size(); ++i) n += weight_of(w, i);
  return n;
}

// Hits and images of the pointing game, boxes or points, restricted to images with a point when
// `need_point`.
std::pair<int64_t, int64_t> pointing(const std::vector<LocalisedImage>& images, bool use_point,
                                     bool need_point, const std::vector<int64_t>& w) {
  int64_t hits = 0, n = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const LocalisedImage& im = images[i];
    if (im.truth.empty() || (need_point && !im.has_point)) continue;
    const int64_t wi = weight_of(w, i);
    n += wi;
    hits += wi * pointing_hit(im, use_point);
  }
  return {hits, n};
}

double ratio(std::pair<int64_t, int64_t> p) {
  return p.second ? static_cast<double>(p.first) / p.second : kNaN;
}

}  // namespace

bool pointing_hit(const LocalisedImage& im, bool use_point) {
  double x = 0, y = 0;
  if (use_point) {
    if (!im.has_point) return false;
    x = im.point_x, y = im.point_y;
  } else {
    if (im.boxes.empty()) return false;
    const data::ScoredBox& top = *std::max_element(
        im.boxes.begin(), im.boxes.end(),
        [](const data::ScoredBox& a, const data::ScoredBox& b) { return a.score < b.score; });
    x = top.box.cx(), y = top.box.cy();
  }
  for (const data::Box& t : im.truth) {
    if (data::contains(t, x, y)) return true;
  }
  return false;
}

double hit_rate(const std::vector<LocalisedImage>& images, bool use_point,
                const std::vector<int64_t>& weights) {
  check_weights(images, weights);
  return ratio(pointing(images, use_point, use_point, weights));
}

double average_precision(const std::vector<LocalisedImage>& images, double iou,
                         const std::vector<int64_t>& weights) {
  check_weights(images, weights);
  return ap_of(rank_and_match(images, iou, false), true_box_count(images, weights), weights);
}

std::vector<double> froc_sensitivity(const std::vector<LocalisedImage>& images,
                                     const std::vector<double>& rates,
                                     const std::vector<int64_t>& weights) {
  check_weights(images, weights);
  return froc_of(rank_and_match(images, 0, true), true_box_count(images, weights),
                 image_count(images, weights), rates, weights);
}

json estimate_json(const Estimate& e) {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(); };
  return {{"value", num(e.value)}, {"lo", num(e.lo)}, {"hi", num(e.hi)}};
}

json LocalisationReport::to_json() const {
  json froc_json = json::array();
  for (size_t r = 0; r < froc.size(); ++r) {
    json e = estimate_json(froc[r]);
    e["fp_per_image"] = fp_per_image[r];
    froc_json.push_back(e);
  }
  return {
      {"images", images},
      {"fractured_images", fractured_images},
      {"true_boxes", true_boxes},
      {"predicted_boxes", predicted_boxes},
      {"groups", groups},
      {"hit_rate", estimate_json(hit_rate)},
      {"point_images", point_images},
      {"point_hit_rate", estimate_json(point_hit_rate)},
      {"hit_difference", estimate_json(hit_difference)},
      {"iou", options.iou},
      {"average_precision", estimate_json(average_precision)},
      {"froc", froc_json},
      {"bootstrap", options.bootstrap},
      {"definitions",
       "hit: the top box's centre (or the point) inside a true box; AP: COCO 101-point at IoU " +
           std::to_string(options.iou).substr(0, 4) +
           "; FROC: a box found when its centre lies inside a true box not yet found; intervals: "
           "95% percentile bootstrap over " +
           std::string(groups < images ? "groups" : "images")}};
}

LocalisationReport compute_localisation(const std::vector<LocalisedImage>& images,
                                        const LocalisationOptions& o) {
  LocalisationReport rep;
  rep.options = o;
  rep.fp_per_image = o.fp_per_image;
  rep.images = static_cast<int64_t>(images.size());
  for (const LocalisedImage& im : images) {
    rep.fractured_images += !im.truth.empty();
    rep.true_boxes += static_cast<int64_t>(im.truth.size());
    rep.predicted_boxes += static_cast<int64_t>(im.boxes.size());
    rep.point_images += !im.truth.empty() && im.has_point;
  }
  if (rep.true_boxes == 0)
    throw std::invalid_argument("localisation: no image has a true box to be found");
  const std::vector<Ranked> by_iou = rank_and_match(images, o.iou, false);
  const std::vector<Ranked> by_centre = rank_and_match(images, 0, true);
  // The figures under weights w (empty: the data as it is).
  auto figures = [&](const std::vector<int64_t>& w) {
    std::vector<double> f = {
        ratio(pointing(images, false, false, w)), ratio(pointing(images, true, true, w)),
        ratio(pointing(images, false, true, w)) - ratio(pointing(images, true, true, w)),
        ap_of(by_iou, true_box_count(images, w), w)};
    for (double s :
         froc_of(by_centre, true_box_count(images, w), image_count(images, w), o.fp_per_image, w))
      f.push_back(s);
    return f;
  };
  const std::vector<double> full = figures({});
  // Bootstrap units: groups when named, else images.
  std::vector<size_t> unit_of(images.size());
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < images.size(); ++i) {
    unit_of[i] = images[i].group.empty()
                     ? index.emplace("\x01image " + std::to_string(i), index.size()).first->second
                     : index.emplace(images[i].group, index.size()).first->second;
  }
  rep.groups = static_cast<int64_t>(index.size());
  std::vector<std::vector<double>> samples(full.size());
  if (o.bootstrap > 0) {
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<size_t> pick(0, index.size() - 1);
    std::vector<int64_t> count(index.size()), w(images.size());
    for (int b = 0; b < o.bootstrap; ++b) {
      std::fill(count.begin(), count.end(), 0);
      for (size_t k = 0; k < index.size(); ++k) ++count[pick(rng)];
      for (size_t i = 0; i < images.size(); ++i) w[i] = count[unit_of[i]];
      const std::vector<double> f = figures(w);
      for (size_t k = 0; k < f.size(); ++k) {
        if (std::isfinite(f[k])) samples[k].push_back(f[k]);
      }
    }
  }
  auto estimate = [&](size_t k) {
    Estimate e{full[k], kNaN, kNaN};
    if (!samples[k].empty() && std::isfinite(full[k])) {
      e.lo = percentile(samples[k], 2.5);
      e.hi = percentile(samples[k], 97.5);
    }
    return e;
  };
  rep.hit_rate = estimate(0);
  rep.point_hit_rate = estimate(1);
  rep.hit_difference = estimate(2);
  rep.average_precision = estimate(3);
  for (size_t r = 0; r < o.fp_per_image.size(); ++r) rep.froc.push_back(estimate(4 + r));
  return rep;
}

std::string format_localisation(const LocalisationReport& r) {
  auto fmt = [](const Estimate& e) {
    char buf[96];
    if (!std::isfinite(e.value)) return std::string("n/a");
    if (std::isfinite(e.lo)) {
      std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]", e.value, e.lo, e.hi);
    } else {
      std::snprintf(buf, sizeof(buf), "%.3f", e.value);
    }
    return std::string(buf);
  };
  std::string s = "localisation: " + std::to_string(r.fractured_images) + " fractured of " +
                  std::to_string(r.images) + " images, " + std::to_string(r.true_boxes) +
                  " true boxes, " + std::to_string(r.predicted_boxes) + " predicted\n";
  s += "  hit rate (top box centre in a true box)   " + fmt(r.hit_rate) + "\n";
  if (r.point_images > 0) {
    s += "  hit rate of the points (Grad-CAM peak)    " + fmt(r.point_hit_rate) + "\n";
    s += "  boxes - points (paired)                   " + fmt(r.hit_difference) + "\n";
  }
  s += "  AP@" + std::to_string(r.options.iou).substr(0, 4) + "                                  " +
       fmt(r.average_precision) + "\n";
  for (size_t k = 0; k < r.froc.size(); ++k) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "  FROC sensitivity at %.2g FP/image         ",
                  r.fp_per_image[k]);
    s += buf + fmt(r.froc[k]) + "\n";
  }
  return s;
}

std::string boxes_csv(const std::vector<std::string>& paths, const std::vector<int>& labels,
                      const std::vector<LocalisedImage>& images) {
  if (paths.size() != images.size() || labels.size() != images.size())
    throw std::invalid_argument("boxes_csv: paths, labels and images differ in number");
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", v);
    return std::string(buf);
  };
  std::string s = "path,group,label,source,x0,y0,x1,y1,score\n";
  for (size_t i = 0; i < images.size(); ++i) {
    const LocalisedImage& im = images[i];
    const std::string head = util::csv_field(paths[i]) + "," + util::csv_field(im.group) + "," +
                             std::to_string(labels[i]) + ",";
    s += head + "image,,,,,\n";
    auto box = [&](const char* source, const data::Box& b, const std::string& score) {
      s += head + source + "," + num(b.x0) + "," + num(b.y0) + "," + num(b.x1) + "," + num(b.y1) +
           "," + score + "\n";
    };
    for (const data::Box& t : im.truth) box("truth", t, "");
    for (const data::ScoredBox& b : im.boxes) box("box", b.box, num(b.score));
    if (im.has_point) box("point", {im.point_x, im.point_y, im.point_x, im.point_y}, "");
  }
  return s;
}

std::vector<LocalisedImage> read_boxes_csv(const std::vector<std::string>& files,
                                           std::vector<std::string>* paths_out) {
  std::vector<LocalisedImage> images;
  std::vector<std::string> paths;
  std::unordered_map<std::string, size_t> index;
  for (const std::string& file : files) {
    const util::CsvTable t = util::read_csv(file);
    const int cp = t.require_column("path", file), cg = t.require_column("group", file),
              cs = t.require_column("source", file), cx0 = t.require_column("x0", file),
              cy0 = t.require_column("y0", file), cx1 = t.require_column("x1", file),
              cy1 = t.require_column("y1", file), csc = t.require_column("score", file);
    std::unordered_map<std::string, size_t> mine;  // images of this file
    for (size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      const std::string where = file + ":" + std::to_string(r + 2);
      const std::string& path = row[cp];
      const std::string& source = row[cs];
      if (source == "image") {
        if (index.count(path))
          throw std::runtime_error(where + ": image '" + path + "' appears twice");
        index[path] = mine[path] = images.size();
        images.push_back({});
        images.back().group = row[cg];
        paths.push_back(path);
        continue;
      }
      const auto it = mine.find(path);
      if (it == mine.end())
        throw std::runtime_error(where + ": a " + source + " row before its image row");
      auto number = [&](int c) {
        try {
          size_t used = 0;
          const double v = std::stod(row[c], &used);
          if (used != row[c].size() || !std::isfinite(v)) throw std::invalid_argument("");
          return v;
        } catch (const std::exception&) {
          throw std::runtime_error(where + ": '" + row[c] + "' is not a number (column " +
                                   t.header[c] + ")");
        }
      };
      const data::Box b{number(cx0), number(cy0), number(cx1), number(cy1)};
      if (!(b.x0 <= b.x1 && b.y0 <= b.y1))
        throw std::runtime_error(where + ": the box's corners are out of order");
      LocalisedImage& im = images[it->second];
      if (source == "truth") {
        im.truth.push_back(b);
      } else if (source == "box") {
        im.boxes.push_back({b, number(csc)});
      } else if (source == "point") {
        im.has_point = true;
        im.point_x = b.x0, im.point_y = b.y0;
      } else {
        throw std::runtime_error(where + ": unknown source '" + source +
                                 "' (image, truth, box or point)");
      }
    }
  }
  if (paths_out) *paths_out = paths;
  return images;
}

}  // namespace wristssl::metrics
