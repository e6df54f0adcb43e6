#include "wristssl/study/evaluate.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "wristssl/data/source.h"
#include "wristssl/data/split.h"
#include "wristssl/distributed/group.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/io/resize.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/metrics/localisation.h"
#include "wristssl/models/box_decoding.h"
#include "wristssl/models/bundle.h"
#include "wristssl/models/classifier.h"
#include "wristssl/models/ensemble.h"
#include "wristssl/models/grad_cam.h"
#include "wristssl/report/heatmap.h"
#include "wristssl/report/html_report.h"
#include "wristssl/report/png_thumb.h"
#include "wristssl/train/batch_inference.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/options_json.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/train/run_log.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/memory_format.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::study {
namespace {

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  if (!fs::exists(path)) return rows;
  std::istringstream in(util::read_text(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

double number_or_nan(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

// What the groups of a dataset are, in words for the report ("patients", "duplicate clusters").
std::string group_noun(const data::Dataset& ds, const data::DatasetOptions& o) {
  if (ds.layout == data::Layout::kGrazpedwri) return "patients";
  if (ds.layout == data::Layout::kManifest && ds.group_count() < ds.records.size()) {
    const std::string& c = o.group_column;
    if (c.find("patient") != std::string::npos) return "patients";
    if (c == "dup_cluster") return "duplicate clusters";
    return "groups (" + c + ")";
  }
  return "images (no grouping known)";
}

// 12 significant digits: strongly calibrated scores crowd near 0.5, and "%.6g" would tie distinct
// ones (the AUROC recomputed from the CSV must be the one reported).
std::string precise(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.12g", v);
  return buf;
}

// Per-image results, in the order of `items`.
struct Scored {
  std::vector<int> items, labels;
  std::vector<std::string> groups;
  std::vector<double> margins, probs;
};

// The model's inputs: the bundle's preprocessing, fp32 unless asked.
train::InferenceInput input_of(const models::Bundle& b, const util::Compute& c) {
  const json& p = b.manifest.at("preprocessing");
  train::InferenceInput in;
  in.out_size = p.at("input_size").get<int>();
  in.mean = p.at("normalization").at("mean").get<float>();
  in.stdev = p.at("normalization").at("std").get<float>();
  in.device = c.device;
  in.bf16 = c.bf16;
  in.channels_last = true;
  return in;
}

// Distributed: every rank scores its share and the scores are gathered, so every rank returns them
// all.
// The bundle's networks on the evaluation's device and precision: one, or one per ensemble member,
// with each member's rule (models/ensemble.h combines their margins).
struct EvaluationModel {
  util::Compute compute;
  std::vector<models::Classifier> members;
  std::vector<models::DecisionRule> rules;
};

Scored score(EvaluationModel& model, const models::DecisionRule& rule,
             const data::LoadedData& loaded, const std::vector<int>& items,
             train::InferenceInput in) {
  Scored s;
  s.items = items;
  for (auto& m : model.members) m->eval();
  in.shard = true;
  // One column per member: its raw margin.
  const torch::Tensor member_margins =
      train::infer(*loaded.pixels, items, in, [&](const torch::Tensor& x) {
        std::vector<torch::Tensor> cols;
        for (auto& m : model.members) {
          const torch::Tensor logits = m->forward(x);
          cols.push_back(logits.select(1, 1) - logits.select(1, 0));
        }
        return torch::stack(cols, 1);
      });
  std::vector<torch::Tensor> columns;
  for (int64_t k = 0; k < member_margins.size(1); ++k)
    columns.push_back(member_margins.select(1, k));
  const torch::Tensor margin =
      models::combine_margins(columns, model.rules).to(torch::kDouble).contiguous();
  const double* m = margin.data_ptr<double>();
  for (size_t k = 0; k < items.size(); ++k) {
    const data::Record& r = loaded.dataset.records[items[k]];
    s.labels.push_back(r.label);
    s.groups.push_back(r.group);
    s.margins.push_back(m[k]);
    s.probs.push_back(rule.probability(m[k]));
  }
  return s;
}

// A thumbnail of image `item` (its cached pixels) and, when `cam` is defined, its Grad-CAM overlay.
std::pair<std::string, std::string> gallery_images(const data::PixelSource& px, int item,
                                                   const torch::Tensor& cam) {
  const int s = px.image_size();
  std::vector<float> v(static_cast<size_t>(s) * s);
  const uint16_t* p = px.pixels(item);
  for (size_t k = 0; k < v.size(); ++k) v[k] = p[k] / 65535.0f;
  const int t = std::min(s, 160);
  const std::vector<float> grey = io::resize_image(v, s, s, t, t);
  std::string overlay;
  if (cam.defined()) {
    const torch::Tensor c = cam.contiguous();
    const std::vector<float> cv(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    const std::vector<float> small =
        io::resize_image(cv, static_cast<int>(c.size(1)), static_cast<int>(c.size(0)), t, t);
    const report::Overlay o = report::overlay_heatmap(grey, small, t, t);
    overlay = report::base64_encode(io::encode_rgb_png(o.rgb, o.width, o.height));
  }
  return {report::png8_base64(grey, t, t), overlay};
}

struct Context {
  std::string out_dir, part;
  const models::Bundle* bundle = nullptr;
  EvaluationModel* model = nullptr;
  const data::LoadedData* loaded = nullptr;
  train::InferenceInput input;
  std::string group_name;
  std::string kind;  // "internal test split" / "external evaluation"
  uint64_t seed = 0;
  std::string threshold_rule;
  json run_info;
  std::vector<report::EpochRow> history;
  std::vector<report::PretrainRow> pretrain;
  json val_metrics;
  std::string boxes;  // folder of YOLO box files: the localisation is measured when set
  int box_class = -1;
  models::BoxDecoding decoding;  // the bundle's, or as overridden
};

// The refer band's counts over the scored images.
struct ReferCounts {
  int64_t referred = 0, outside = 0, outside_ok = 0;
};

// scores_<part>.csv: every image's score, margin and decision at the bundle's frozen rule.
ReferCounts write_scores(const Context& cx, const Scored& s, const models::DecisionRule& rule) {
  std::string csv = "path,group,label,score,margin,decision\n";
  ReferCounts n;
  for (size_t k = 0; k < s.items.size(); ++k) {
    const std::string decision = rule.decide(s.probs[k]);
    if (decision == "refer") {
      ++n.referred;
    } else {
      ++n.outside;
      n.outside_ok += (decision == "fracture") == (s.labels[k] == 1);
    }
    csv += util::csv_field(cx.loaded->dataset.records[s.items[k]].path) + "," +
           util::csv_field(s.groups[k]) + "," + std::to_string(s.labels[k]) + "," +
           precise(s.probs[k]) + "," + precise(s.margins[k]) + "," + decision + "\n";
  }
  util::atomic_write(cx.out_dir + "/scores_" + cx.part + ".csv", csv);

  return n;
}

// metrics_<part>.json: every metric with its interval, the calibration and the refer band; also
// printed.
json write_metrics(const EvaluateOptions& eo, const Context& cx, const Scored& s, size_t unreadable,
                   const models::DecisionRule& rule, const ReferCounts& n) {
  const json& d = cx.bundle->manifest.at("decision");
  metrics::ReportOptions ro;
  ro.threshold = rule.threshold;
  ro.threshold_source = "frozen in " + cx.bundle->id() + " (" + d.value("rule", std::string("?")) +
                        " on validation, calibrated)";
  ro.bootstrap = eo.bootstrap;
  ro.seed = cx.seed;
  const metrics::MetricsReport rep = metrics::compute_report(s.labels, s.probs, s.groups, ro);
  json out = rep.to_json();
  out["part"] = cx.part;
  out["evaluation"] = cx.kind;
  out["model"] = {
      {"id", cx.bundle->id()}, {"sha256", cx.bundle->sha256}, {"path", cx.bundle->path}};
  out["unreadable_skipped"] = unreadable;
  std::vector<double> raw;
  for (double m : s.margins) raw.push_back(metrics::sigmoid(m));
  const json& cal = d.at("calibration");
  out["calibration_fit"] = {{"method", cal.value("method", std::string("temperature"))},
                            {"temperature", rule.temperature},
                            {"fitted_on", "validation"},
                            {"images", cal.value("images", 0)},
                            {"ece_before", metrics::compute_calibration(s.labels, raw, 10).ece},
                            {"ece_after", metrics::compute_calibration(s.labels, s.probs, 10).ece},
                            {"ece_measured_on", cx.part}};
  out["refer"] = {{"lo", rule.refer_lo},
                  {"hi", rule.refer_hi},
                  {"referred", n.referred},
                  {"images", s.items.size()},
                  {"accuracy_outside",
                   n.outside ? json(static_cast<double>(n.outside_ok) / n.outside) : json()}};
  util::atomic_write(cx.out_dir + "/metrics_" + cx.part + ".json", out.dump(2));
  std::printf("%s", metrics::format_report(rep).c_str());
  std::printf(
      "calibration: ECE %.3f -> %.3f (temperature %.3f fitted on validation); refer band [%.4f, "
      "%.4f): %lld of %zu images referred\n",
      out["calibration_fit"]["ece_before"].get<double>(),
      out["calibration_fit"]["ece_after"].get<double>(), rule.temperature, rule.refer_lo,
      rule.refer_hi, static_cast<long long>(n.referred), s.items.size());
  return out;
}

// The most confident errors (false negatives with the lowest scores, false positives with the
// highest), each with its Grad-CAM, into the report's gallery.
void add_error_gallery(const EvaluateOptions& eo, const Context& cx, const Scored& s,
                       const models::DecisionRule& rule, report::ReportInputs& in) {
  std::vector<size_t> fn, fp;
  for (size_t k = 0; k < s.items.size(); ++k) {
    if (s.labels[k] == 1 && s.probs[k] < rule.threshold) fn.push_back(k);
    if (s.labels[k] == 0 && s.probs[k] >= rule.threshold) fp.push_back(k);
  }
  std::sort(fn.begin(), fn.end(), [&](size_t a, size_t b) { return s.probs[a] < s.probs[b]; });
  std::sort(fp.begin(), fp.end(), [&](size_t a, size_t b) { return s.probs[a] > s.probs[b]; });
  for (auto* list : {&fn, &fp}) {
    if (list->size() > static_cast<size_t>(std::max(0, eo.gallery)))
      list->resize(static_cast<size_t>(std::max(0, eo.gallery)));
    if (list->empty()) continue;
    std::vector<int> items;
    for (size_t k : *list) items.push_back(s.items[k]);
    // Grad-CAM in fp32 on the gallery's inputs (a handful of images).
    train::InferenceInput in32 = cx.input;
    in32.bf16 = false;
    std::vector<torch::Tensor> cams;
    train::infer(*cx.loaded->pixels, items, in32, [&](const torch::Tensor& x) {
      torch::Tensor sum;
      for (auto& m : cx.model->members) {
        const torch::Tensor map = models::grad_cam(*m, x).maps;
        sum = sum.defined() ? sum + map : map;
      }
      cams.push_back(sum / static_cast<double>(cx.model->members.size()));
      return torch::zeros({x.size(0), 1});
    });
    const torch::Tensor maps = torch::cat(cams, 0);
    for (size_t j = 0; j < list->size(); ++j) {
      const size_t k = (*list)[j];
      auto [thumb, heat] =
          gallery_images(*cx.loaded->pixels, s.items[k], maps[static_cast<int64_t>(j)]);
      report::GalleryItem g;
      g.path = cx.loaded->dataset.records[s.items[k]].path;
      g.label = s.labels[k];
      g.score = s.probs[k];
      g.thumbnail_png_base64 = thumb;
      g.heatmap_png_base64 = heat;
      (list == &fn ? in.false_negatives : in.false_positives).push_back(g);
    }
  }
}

// report.html: the metrics, curves, calibration, refer band and error gallery for a clinician.
void write_evaluation_report(const EvaluateOptions& eo, const Context& cx, const Scored& s,
                             size_t unreadable, const models::DecisionRule& rule, const json& out,
                             const std::vector<report::GalleryItem>& localised) {
  const json& d = cx.bundle->manifest.at("decision");
  report::ReportInputs in;
  in.title = cx.kind == "external evaluation" ? "wristssl external evaluation report"
                                              : "wristssl fracture detection report";
  in.test_metrics = out;
  in.val_metrics = cx.val_metrics;
  in.threshold_rule = cx.threshold_rule;
  in.history = cx.history;
  in.pretrain = cx.pretrain;
  in.group_name = cx.group_name;
  in.evaluation_kind = cx.kind;
  in.model_description = cx.bundle->id() + " (" + fs::path(cx.bundle->path).filename().string() +
                         ", SHA-256 " + cx.bundle->sha256 + ")";
  in.calibration = out["calibration_fit"];
  in.refer_band = {{"lo", rule.refer_lo},
                   {"hi", rule.refer_hi},
                   {"rule", d.at("refer_band").value("rule", std::string())},
                   {"test_referred", out["refer"]["referred"]},
                   {"test_images", s.items.size()},
                   {"accuracy_outside", out["refer"]["accuracy_outside"]}};
  add_error_gallery(eo, cx, s, rule, in);
  if (out.contains("localisation") && out["localisation"].contains("hit_rate")) {
    in.localisation = out["localisation"];
    in.localised = localised;
  }
  in.run_info = cx.run_info;
  in.run_info["model"] = cx.bundle->id();
  in.run_info["images scored"] = s.items.size();
  in.run_info["unreadable skipped"] = unreadable;
  in.run_info["threshold"] = train::format_number(rule.threshold) + " calibrated (" +
                             train::format_number(d.value("threshold_raw", 0.0)) +
                             " before calibration; " + d.value("rule", std::string()) +
                             ", chosen on validation)";
  in.disclaimer = cx.bundle->manifest.value("intended_use", std::string("Research use only.")) +
                  " Figures describe this data only; intervals are 95% (Wilson for proportions, "
                  "bootstrap over " +
                  cx.group_name + " for AUROC, AUPRC and F1).";
  report::write_report(cx.out_dir + "/report.html", in);
  std::printf("report: %s\n", (cx.out_dir + "/report.html").c_str());
}

// The localisation of the scored images whose truth is known (an annotation file, or a label of no
// fracture): their boxes and Grad-CAM's peak, against the annotated boxes.
struct Localisation {
  std::vector<size_t> rows;  // into Scored
  std::vector<metrics::LocalisedImage> images;
  size_t unknown = 0;  // fractured images without an annotation file
  std::vector<std::string> problems;
};

Localisation localise(const Context& cx, const Scored& s, const models::DecisionRule& rule) {
  const data::Dataset& ds = cx.loaded->dataset;
  std::vector<std::string> paths;
  for (int item : s.items) paths.push_back(ds.records[item].path);
  const data::BoxTable table = data::read_box_folder(cx.boxes, paths, cx.box_class);
  Localisation l;
  l.problems = table.problems;
  std::vector<int> items;
  for (size_t k = 0; k < s.items.size(); ++k) {
    if (table.by_image.count(k) || s.labels[k] == 0) {
      l.rows.push_back(k);
      items.push_back(s.items[k]);
    } else {
      ++l.unknown;
    }
  }
  if (items.empty()) return l;
  const models::BoxDecoding& decoding = cx.decoding;
  train::InferenceInput in32 = cx.input;
  in32.bf16 = false;
  in32.shard = false;
  int64_t h = 0, w = 0;
  // Per image: the combined margin map, flattened, then Grad-CAM's peak (x, y), normalised.
  const torch::Tensor rows =
      train::infer(*cx.loaded->pixels, items, in32, [&](const torch::Tensor& x) {
        std::vector<torch::Tensor> maps;
        torch::Tensor cam;
        for (auto& m : cx.model->members) {
          torch::Tensor a;
          {
            torch::NoGradGuard no_grad;
            a = m->backbone->feature_map(x);
            maps.push_back(m->margin_map(a.to(torch::kFloat)));
          }
          const torch::Tensor c = models::grad_cam_from_features(*m, a, x.size(2), x.size(3)).maps;
          cam = cam.defined() ? cam + c : c;
        }
        const torch::Tensor combined =
            models::combine_margins(maps, cx.model->rules).to(torch::kFloat);
        h = combined.size(1), w = combined.size(2);
        const int64_t ch = cam.size(1), cw = cam.size(2);
        const torch::Tensor peak = cam.flatten(1).argmax(1);
        const torch::Tensor px = ((peak % cw).to(torch::kFloat) + 0.5) / static_cast<double>(cw);
        const torch::Tensor py = ((peak / cw).to(torch::kFloat) + 0.5) / static_cast<double>(ch);
        return torch::cat({combined.flatten(1), px.unsqueeze(1), py.unsqueeze(1)}, 1);
      }).contiguous();
  for (size_t j = 0; j < l.rows.size(); ++j) {
    const size_t k = l.rows[j];
    const float* r = rows.data_ptr<float>() + static_cast<int64_t>(j) * rows.size(1);
    metrics::LocalisedImage im;
    im.group = s.groups[k];
    const auto it = table.by_image.find(k);
    if (it != table.by_image.end() && s.labels[k] == 1) im.truth = it->second;
    im.boxes = models::decode_boxes(std::vector<float>(r, r + h * w), static_cast<int>(w),
                                    static_cast<int>(h), decoding);
    for (data::ScoredBox& b : im.boxes) b.score = rule.probability(b.score);
    im.has_point = true;
    im.point_x = r[h * w];
    im.point_y = r[h * w + 1];
    l.images.push_back(std::move(im));
  }
  return l;
}

// A thumbnail of a localised image: the true boxes in green, the model's shown boxes in white
// (dashed outside the fracture band), as the outputs show them.
report::GalleryItem localised_item(const Context& cx, const Scored& s, size_t k,
                                   const metrics::LocalisedImage& im,
                                   const models::DecisionRule& rule) {
  const data::PixelSource& px = *cx.loaded->pixels;
  const int n = px.image_size(), t = std::min(n, 200);
  std::vector<float> v(static_cast<size_t>(n) * n);
  const uint16_t* p = px.pixels(s.items[k]);
  for (size_t i = 0; i < v.size(); ++i) v[i] = p[i] / 65535.0f;
  const std::vector<float> grey = io::resize_image(v, n, n, t, t);
  report::Overlay o;
  o.width = o.height = t;
  for (float g : grey) {
    const uint8_t b = static_cast<uint8_t>(std::lround(std::clamp(g, 0.0f, 1.0f) * 255));
    o.rgb.insert(o.rgb.end(), {b, b, b});
  }
  for (const data::Box& b : im.truth) {
    const auto q = models::box_pixels(b, t, t);
    report::draw_box(o, q[0], q[1], q[2], q[3], {60, 220, 90}, false, 2);
  }
  // The boxes as predict would show them, whatever the bundle says about showing them: this is
  // where they are measured.
  infer::Prediction shown;
  shown.decision = rule.decide(s.probs[k]);
  shown.boxes = im.boxes;
  infer::draw_shown_boxes(o, t, t, shown, rule);
  report::GalleryItem g;
  g.path = cx.loaded->dataset.records[s.items[k]].path;
  g.label = s.labels[k];
  g.score = s.probs[k];
  g.thumbnail_png_base64 = report::base64_encode(io::encode_rgb_png(o.rgb, o.width, o.height));
  return g;
}

// boxes_<part>.csv and the figures (added to `out`), printed; examples for the report.
void measure_localisation(const EvaluateOptions& eo, const Context& cx, const Scored& s,
                          const models::DecisionRule& rule, json& out,
                          std::vector<report::GalleryItem>* examples) {
  const Localisation l = localise(cx, s, rule);
  for (size_t i = 0; i < l.problems.size() && i < 5; ++i)
    std::fprintf(stderr, "evaluate: warning: boxes: %s\n", l.problems[i].c_str());
  if (l.problems.size() > 5)
    std::fprintf(stderr, "evaluate: warning: boxes: %zu more malformed lines\n",
                 l.problems.size() - 5);
  std::vector<std::string> paths;
  std::vector<int> labels;
  for (size_t k : l.rows) {
    paths.push_back(cx.loaded->dataset.records[s.items[k]].path);
    labels.push_back(s.labels[k]);
  }
  util::atomic_write(cx.out_dir + "/boxes_" + cx.part + ".csv",
                     metrics::boxes_csv(paths, labels, l.images));
  metrics::LocalisationOptions lo;
  lo.bootstrap = eo.bootstrap;
  lo.seed = cx.seed;
  json j;
  try {
    const metrics::LocalisationReport rep = metrics::compute_localisation(l.images, lo);
    std::printf("%s", metrics::format_localisation(rep).c_str());
    j = rep.to_json();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "evaluate: no localisation figures: %s\n", e.what());
    j = {{"error", e.what()}};
  }
  j["boxes"] = cx.boxes;
  j["fractured_without_annotation"] = l.unknown;
  j["malformed_lines"] = l.problems.size();
  j["decoding"] = cx.decoding.to_json();
  out["localisation"] = j;
  // Examples: the fractured images the model scored highest.
  std::vector<size_t> fractured;
  for (size_t j2 = 0; j2 < l.images.size(); ++j2) {
    if (!l.images[j2].truth.empty()) fractured.push_back(j2);
  }
  std::sort(fractured.begin(), fractured.end(),
            [&](size_t a, size_t b) { return s.probs[l.rows[a]] > s.probs[l.rows[b]]; });
  for (size_t i = 0; i < fractured.size() && static_cast<int>(i) < eo.gallery; ++i)
    examples->push_back(localised_item(cx, s, l.rows[fractured[i]], l.images[fractured[i]], rule));
}

json finish(const EvaluateOptions& eo, Context& cx, const Scored& s, size_t unreadable) {
  cx.decoding = models::bundle_decoding(cx.bundle->manifest);
  if (eo.box_drop > 0) cx.decoding.drop = eo.box_drop;
  const models::DecisionRule rule =
      models::DecisionRule::from_json(cx.bundle->manifest.at("decision"));
  const ReferCounts n = write_scores(cx, s, rule);
  json out = write_metrics(eo, cx, s, unreadable, rule, n);
  std::vector<report::GalleryItem> examples;
  if (!cx.boxes.empty()) {
    measure_localisation(eo, cx, s, rule, out, &examples);
    util::atomic_write(cx.out_dir + "/metrics_" + cx.part + ".json", out.dump(2));
  }
  if (eo.report) write_evaluation_report(eo, cx, s, unreadable, rule, out, examples);
  return out;
}

std::vector<int> readable_items(const data::LoadedData& loaded, const std::vector<int>& candidates,
                                size_t* unreadable) {
  std::vector<int> items;
  for (int i : candidates) {
    if (loaded.pixels->ok(i)) {
      items.push_back(i);
    } else {
      ++*unreadable;
    }
  }
  return items;
}

EvaluationModel load_for_evaluation(const models::Bundle& bundle, const EvaluateOptions& eo) {
  if (bundle.manifest.at("class_names").size() != 2) {
    throw std::runtime_error("evaluate: only fracture / no fracture models");
  }
  EvaluationModel m{util::setup_compute("evaluate", eo.threads, eo.precision), {}, {}};
  for (const models::Bundle& b : models::bundle_members(bundle)) {
    m.members.push_back(models::classifier_from_bundle(b));
    m.members.back()->to(m.compute.device);
    util::to_channels_last(*m.members.back());
    m.rules.push_back(models::DecisionRule::from_json(b.manifest.at("decision")));
  }
  return m;
}

json evaluate_run(const EvaluateOptions& eo) {
  const std::string cfg_path = eo.run + "/config.json";
  if (!fs::exists(cfg_path) || !fs::exists(eo.run + "/model.pt") ||
      !fs::exists(eo.run + "/threshold.json")) {
    throw std::runtime_error(
        eo.run + " is not a finished classifier run (needs config.json, model.pt, threshold.json)");
  }
  if (eo.part != "test" && eo.part != "val" && eo.part != "train")
    throw std::runtime_error("--part must be test, val or train");
  const json cfg = json::parse(util::read_text(cfg_path));
  train::ClassifierOptions o;
  json plain = cfg;
  plain.erase("resolved");
  train::from_json(plain, o);
  if (o.split.empty()) o.split = o.out + "/split.json";
  const std::string bundle_path = eo.run + "/model.wristssl";
  const models::Bundle bundle =
      fs::exists(bundle_path) ? models::read_bundle(bundle_path) : train::write_run_bundle(eo.run);
  EvaluationModel model = load_for_evaluation(bundle, eo);
  const util::Compute& compute = model.compute;

  const data::LoadedData loaded = data::load_pixels(
      o.data, data::cache_options(o.cache_dir, o.image_size, eo.threads), o.limit);
  const data::Split split = data::load_split(o.split, loaded.dataset);
  const data::Part part = eo.part == "test"  ? data::Part::kTest
                          : eo.part == "val" ? data::Part::kVal
                                             : data::Part::kTrain;
  size_t unreadable = 0;
  const std::vector<int> items = readable_items(loaded, split.indices(part), &unreadable);
  if (items.empty()) throw std::runtime_error("no readable images in the " + eo.part + " part");

  Context cx;
  cx.out_dir = eo.run;
  cx.part = eo.part;
  cx.bundle = &bundle;
  cx.model = &model;
  cx.loaded = &loaded;
  cx.input = input_of(bundle, compute);
  cx.group_name = group_noun(loaded.dataset, o.data);
  cx.kind = "internal " + eo.part + " split";
  cx.seed = o.seed;
  cx.boxes = eo.data.boxes.empty() ? o.data.boxes : eo.data.boxes;
  cx.box_class = eo.data.boxes.empty() ? o.data.box_class : eo.data.box_class;
  const json thr = json::parse(util::read_text(eo.run + "/threshold.json"));
  cx.threshold_rule = thr.value("rule", std::string());
  if (eo.part == "test" && fs::exists(eo.run + "/metrics_val.json"))
    cx.val_metrics = json::parse(util::read_text(eo.run + "/metrics_val.json"));
  for (const json& r : read_jsonl(eo.run + "/metrics.jsonl")) {
    cx.history.push_back({r.value("epoch", 0), r.value("phase", std::string()),
                          number_or_nan(r, "train_loss"), number_or_nan(r, "val_loss"),
                          number_or_nan(r, "val_accuracy"), number_or_nan(r, "val_auroc")});
  }
  if (o.init == "simclr" && !o.backbone.empty()) {
    for (const json& r :
         read_jsonl((fs::path(o.backbone).parent_path() / "metrics.jsonl").string())) {
      cx.pretrain.push_back(
          {r.value("epoch", 0), number_or_nan(r, "loss"), number_or_nan(r, "knn_accuracy")});
    }
  }
  const json& res = cfg["resolved"];
  cx.run_info = {
      {"data", o.data.data},
      {"split", o.split},
      {"evaluated part", eo.part},
      {"train / val / test images", std::to_string(res.value("train_images", 0)) + " / " +
                                        std::to_string(res.value("val_images", 0)) + " / " +
                                        std::to_string(res.value("test_images", 0))},
      {"initialisation",
       o.init == "simclr" ? "SimCLR backbone " + o.backbone : "random (supervised baseline)"},
      {"schedule", std::to_string(o.probe_epochs) + " probe + " +
                       std::to_string(o.finetune_epochs) + " fine-tune epochs, best epoch " +
                       std::to_string(thr.value("best_epoch", 0))},
      {"image size", std::to_string(o.image_size) + " px (network input " +
                         std::to_string(o.crop_size > 0 ? o.crop_size : o.image_size) + " px)"},
      {"label fraction", o.label_fraction},
      {"seed", o.seed},
      {"run folder", eo.run}};
  const Scored s = score(model, models::DecisionRule::from_json(bundle.manifest.at("decision")),
                         loaded, items, cx.input);
  if (!distributed::is_main()) return json::object();  // rank 0 computes and writes the rest
  json out = finish(eo, cx, s, unreadable);
  // The bundle carries the test metrics once they exist.
  if (eo.part == "test") train::write_run_bundle(eo.run);
  return out;
}

json evaluate_external(const EvaluateOptions& eo) {
  const models::Bundle bundle = models::read_bundle(eo.model);
  EvaluationModel model = load_for_evaluation(bundle, eo);
  const util::Compute& compute = model.compute;
  const json& pre = bundle.manifest.at("preprocessing");
  if (pre.value("resize", std::string()) != "stretch") {
    throw std::runtime_error(eo.model + ": preprocessing resize '" +
                             pre.value("resize", std::string()) + "' is not supported");
  }
  const data::LoadedData loaded = data::load_pixels(
      eo.data, data::cache_options(eo.cache_dir, pre.at("image_size").get<int>(), eo.threads));
  const data::Dataset& ds = loaded.dataset;
  if (!ds.labelled())
    throw std::runtime_error(eo.data.data +
                             ": external evaluation needs labelled data (fracture / no fracture)");
  if (ds.class_names.size() != 2)
    throw std::runtime_error(eo.data.data + ": needs exactly two classes");
  std::vector<int> all(ds.records.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::vector<int> labelled;
  for (int i : all) {
    if (ds.records[i].label >= 0) labelled.push_back(i);
  }
  size_t unreadable = 0;
  const std::vector<int> items = readable_items(loaded, labelled, &unreadable);
  if (items.empty()) throw std::runtime_error(eo.data.data + ": no readable labelled images");

  Context cx;
  cx.out_dir =
      eo.out.empty() ? "evaluation-" + bundle.manifest.value("name", std::string("model")) : eo.out;
  fs::create_directories(cx.out_dir);
  cx.part = "external";
  cx.bundle = &bundle;
  cx.model = &model;
  cx.loaded = &loaded;
  cx.input = input_of(bundle, compute);
  cx.group_name = group_noun(ds, eo.data);
  cx.kind = "external evaluation";
  cx.threshold_rule = bundle.manifest.at("decision").value("rule", std::string());
  cx.boxes = eo.data.boxes;
  cx.box_class = eo.data.box_class;
  const json& tr = bundle.manifest.value("training", json::object());
  cx.run_info = {
      {"data", eo.data.data},
      {"layout", data::layout_name(ds.layout)},
      {"classes", std::string(ds.class_names[0]) + " (0) / " + ds.class_names[1] + " (1)"},
      {"model trained on",
       tr.contains("data") ? tr["data"].value("data", std::string()) : std::string("?")},
      {"model training images", tr.value("train_images", 0)},
      {"model created", bundle.manifest.value("created", std::string())},
      {"wristssl version of the model", bundle.manifest.value("wristssl_version", std::string())},
      {"output folder", cx.out_dir}};
  const Scored s = score(model, models::DecisionRule::from_json(bundle.manifest.at("decision")),
                         loaded, items, cx.input);
  if (!distributed::is_main()) return json::object();  // rank 0 computes and writes the rest
  json out = finish(eo, cx, s, unreadable);
  util::atomic_write(cx.out_dir + "/evaluation.json",
                     json{{"model", bundle.path},
                          {"model_id", bundle.id()},
                          {"data", train::data_options_to_json(eo.data)}}
                         .dump(2));
  return out;
}

}  // namespace

json run_evaluate(const EvaluateOptions& eo) {
  distributed::init();  // a distributed job (torchrun, SLURM, wristssl launch) scores in shards
  if (!eo.model.empty() && !eo.run.empty())
    throw std::runtime_error("evaluate: give --run or --model, not both");
  if (!eo.model.empty()) {
    if (eo.data.data.empty())
      throw std::runtime_error("evaluate --model needs --data (a labelled dataset)");
    return evaluate_external(eo);
  }
  if (eo.run.empty())
    throw std::runtime_error(
        "evaluate needs --run CLS (its own split) or --model BUNDLE --data DATA");
  return evaluate_run(eo);
}

}  // namespace wristssl::study
