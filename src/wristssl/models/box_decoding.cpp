#include "wristssl/models/box_decoding.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "wristssl/io/resize.h"

namespace wristssl::models {

nlohmann::json BoxDecoding::to_json() const {
  return {{"drop", drop},
          {"max_boxes", max_boxes},
          {"upsample", upsample},
          {"nms_iou", nms_iou},
          {"show", show}};
}

BoxDecoding BoxDecoding::from_json(const nlohmann::json& j) {
  BoxDecoding d;
  if (j.is_null()) return d;
  if (!j.is_object())
    throw std::invalid_argument("box decoding: expected an object, got " + j.dump());
  d.drop = j.value("drop", d.drop);
  d.max_boxes = j.value("max_boxes", d.max_boxes);
  d.upsample = j.value("upsample", d.upsample);
  d.nms_iou = j.value("nms_iou", d.nms_iou);
  d.show = j.value("show", d.show);
  if (!(d.drop > 0) || !std::isfinite(d.drop))
    throw std::invalid_argument("box decoding: drop must be > 0, got " + std::to_string(d.drop));
  if (d.max_boxes < 1 || d.max_boxes > 100)
    throw std::invalid_argument("box decoding: max_boxes must be 1 to 100, got " +
                                std::to_string(d.max_boxes));
  if (d.upsample < 1 || d.upsample > 64)
    throw std::invalid_argument("box decoding: upsample must be 1 to 64, got " +
                                std::to_string(d.upsample));
  if (!(d.nms_iou > 0 && d.nms_iou <= 1))
    throw std::invalid_argument("box decoding: nms_iou must be in (0, 1], got " +
                                std::to_string(d.nms_iou));
  return d;
}

BoxDecoding bundle_decoding(const nlohmann::json& manifest) {
  const nlohmann::json loc = manifest.value("localisation", nlohmann::json());
  BoxDecoding d = BoxDecoding::from_json(loc);
  if (loc.is_object() && loc.contains("show")) return d;
  auto trained = [](const nlohmann::json& m) {
    const nlohmann::json t = m.value("training", nlohmann::json::object());
    return t.is_object() && t.value("box_loss", 0.0) > 0;
  };
  const nlohmann::json members = manifest.value("members", nlohmann::json::array());
  if (members.is_array() && !members.empty()) {
    d.show = true;
    for (const nlohmann::json& m : members) d.show = d.show && m.is_object() && trained(m);
  } else {
    d.show = trained(manifest);
  }
  return d;
}

std::vector<data::ScoredBox> non_maximum_suppression(std::vector<data::ScoredBox> boxes,
                                                     double iou) {
  std::stable_sort(
      boxes.begin(), boxes.end(),
      [](const data::ScoredBox& a, const data::ScoredBox& b) { return a.score > b.score; });
  std::vector<data::ScoredBox> kept;
  for (const data::ScoredBox& b : boxes) {
    bool overlaps = false;
    for (const data::ScoredBox& k : kept) overlaps = overlaps || data::iou(b.box, k.box) > iou;
    if (!overlaps) kept.push_back(b);
  }
  return kept;
}

std::vector<data::ScoredBox> decode_boxes(const std::vector<float>& map, int width, int height,
                                          const BoxDecoding& d) {
  if (width < 1 || height < 1 || map.size() != static_cast<size_t>(width) * height)
    throw std::invalid_argument("decode_boxes: map of " + std::to_string(map.size()) +
                                " values is not " + std::to_string(width) + " x " +
                                std::to_string(height));
  const int w = width * d.upsample, h = height * d.upsample;
  std::vector<float> v = d.upsample > 1 ? io::resize_image(map, width, height, w, h) : map;
  const float lowest = -std::numeric_limits<float>::infinity();
  for (float& x : v) {
    if (!std::isfinite(x)) x = lowest;
  }
  auto at = [&](int r, int c) { return v[static_cast<size_t>(r) * w + c]; };
  // Seeds: local maxima over the 8 neighbours (a plateau's cells all qualify; the first taken
  // claims the rest).
  std::vector<int> seeds;
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const float x = at(r, c);
      if (x == lowest) continue;
      bool peak = true;
      for (int dr = -1; dr <= 1 && peak; ++dr) {
        for (int dc = -1; dc <= 1; ++dc) {
          const int rr = r + dr, cc = c + dc;
          if ((dr || dc) && rr >= 0 && rr < h && cc >= 0 && cc < w && at(rr, cc) > x) {
            peak = false;
            break;
          }
        }
      }
      if (peak) seeds.push_back(r * w + c);
    }
  }
  std::stable_sort(seeds.begin(), seeds.end(), [&](int a, int b) { return v[a] > v[b]; });
  std::vector<char> taken(v.size(), 0);
  std::vector<data::ScoredBox> boxes;
  std::vector<int> stack;
  // Candidates beyond max_boxes are kept until suppression so that a suppressed box makes room.
  const size_t limit = static_cast<size_t>(d.max_boxes) * 4;
  for (int seed : seeds) {
    if (taken[seed]) continue;
    if (boxes.size() >= limit) break;
    const float level = v[seed] - static_cast<float>(d.drop);
    int r0 = h, r1 = -1, c0 = w, c1 = -1;
    stack.assign(1, seed);
    taken[seed] = 1;
    while (!stack.empty()) {
      const int k = stack.back();
      stack.pop_back();
      const int r = k / w, c = k % w;
      r0 = std::min(r0, r), r1 = std::max(r1, r), c0 = std::min(c0, c), c1 = std::max(c1, c);
      const int nb[4][2] = {{r - 1, c}, {r + 1, c}, {r, c - 1}, {r, c + 1}};
      for (const auto& n : nb) {
        if (n[0] < 0 || n[0] >= h || n[1] < 0 || n[1] >= w) continue;
        const int j = n[0] * w + n[1];
        if (!taken[j] && v[j] >= level) {
          taken[j] = 1;
          stack.push_back(j);
        }
      }
    }
    data::ScoredBox b;
    b.box = {static_cast<double>(c0) / w, static_cast<double>(r0) / h,
             static_cast<double>(c1 + 1) / w, static_cast<double>(r1 + 1) / h};
    b.score = v[seed];
    boxes.push_back(b);
  }
  boxes = non_maximum_suppression(std::move(boxes), d.nms_iou);
  if (boxes.size() > static_cast<size_t>(d.max_boxes)) boxes.resize(d.max_boxes);
  return boxes;
}

std::array<int, 4> box_pixels(const data::Box& b, int width, int height) {
  auto clampi = [](double x, int hi) { return std::clamp(static_cast<int>(x), 0, hi); };
  return {clampi(std::floor(b.x0 * width), width), clampi(std::floor(b.y0 * height), height),
          clampi(std::ceil(b.x1 * width), width), clampi(std::ceil(b.y1 * height), height)};
}

}  // namespace wristssl::models
