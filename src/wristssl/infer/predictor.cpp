#include "wristssl/infer/predictor.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "wristssl/infer/export.h"
#include "wristssl/io/read_image.h"
#include "wristssl/io/resize.h"
#include "wristssl/models/grad_cam.h"
#include "wristssl/report/heatmap.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/device.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/threads.h"

namespace wristssl::infer {

Predictor::Predictor(models::Bundle bundle, const PredictorOptions& o)
    : bundle_(std::move(bundle)) {
  const nlohmann::json& p = bundle_.manifest.at("preprocessing");
  if (p.value("resize", std::string()) != "stretch" || p.value("channels", 1) != 1) {
    throw models::BundleError(bundle_.path, "manifest",
                              "preprocessing " + p.dump() + " is not supported by this build");
  }
  pre_.image_size = p.at("image_size").get<int>();
  pre_.input_size = p.at("input_size").get<int>();
  pre_.keep_aspect = false;
  pre_.mean = p.at("normalization").at("mean").get<float>();
  pre_.stdev = p.at("normalization").at("std").get<float>();
  if (pre_.image_size < 8 || pre_.image_size > 4096 || pre_.input_size < 8 ||
      pre_.input_size > 4096 || !(pre_.stdev > 0)) {
    throw models::BundleError(bundle_.path, "manifest", "preprocessing out of range: " + p.dump());
  }
  rule_ = models::DecisionRule::from_json(bundle_.manifest.at("decision"));
  try {
    decoding_ =
        models::BoxDecoding::from_json(bundle_.manifest.value("localisation", nlohmann::json()));
  } catch (const std::invalid_argument& e) {
    throw models::BundleError(bundle_.path, "manifest", e.what());
  }
  boxes_ = o.boxes;
  if (o.threads >= 0) util::set_threads(o.threads);
  device_ = util::best_device();
  bf16_ = util::use_bf16(o.precision, device_);
  use_graph_ = o.graph && device_.is_cpu() && !bf16_;
  for (const models::Bundle& b : models::bundle_members(bundle_)) {
    Member m;
    m.model = models::classifier_from_bundle(b);
    m.model->to(device_);
    m.model->eval();
    util::to_channels_last(*m.model);
    if (use_graph_) {
      // The eager model stays for Grad-CAM (it needs the feature map); plain scoring takes the
      // graph.
      torch::jit::Module frozen =
          torch::jit::freeze(torchscript_module(b), std::vector<std::string>{"feature_map"});
      m.graph = torch::jit::optimize_for_inference(frozen, {"feature_map"});
    }
    member_rules_.push_back(models::DecisionRule::from_json(b.manifest.at("decision")));
    members_.push_back(std::move(m));
  }
}

std::vector<float> Predictor::input(const io::Image& image) const {
  return data::network_input(image, pre_);
}

torch::Tensor Predictor::batch(const std::vector<std::vector<float>>& inputs) const {
  const int64_t s = pre_.input_size, n = static_cast<int64_t>(inputs.size());
  torch::Tensor x = torch::empty({n, 1, s, s}, torch::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(static_cast<int64_t>(inputs[i].size()) == s * s, "input ", i, " holds ",
                inputs[i].size(), " values, expected ", s * s);
    std::memcpy(x.data_ptr<float>() + i * s * s, inputs[i].data(), sizeof(float) * s * s);
  }
  return x.to(device_);
}

Prediction Predictor::decide(double margin) const {
  Prediction p;
  p.margin = margin;
  p.probability = rule_.probability(margin);
  p.decision = rule_.decide(p.probability);
  return p;
}

torch::Tensor Predictor::feature_map(Member& m, const torch::Tensor& in) {
  if (use_graph_) return m.graph.run_method("feature_map", in).toTensor();
  const util::AutocastGuard autocast(bf16_, device_.type());
  return m.model->backbone->feature_map(in);
}

std::vector<Prediction> Predictor::predict(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const torch::Tensor in = x.to(device_);
  std::vector<torch::Tensor> margins, maps;
  for (Member& m : members_) {
    // One pass: the last block's activations give both the image's logits and the per-location
    // log-odds the boxes come from.
    const torch::Tensor a = feature_map(m, in);
    const torch::Tensor logits = m.model->logits_from_map(a).to(torch::kFloat);
    margins.push_back(logits.select(1, 1) - logits.select(1, 0));
    if (boxes_) maps.push_back(m.model->margin_map(a.to(torch::kFloat)));
  }
  return decide_all(margins, maps);
}

std::vector<Prediction> Predictor::decide_all(const std::vector<torch::Tensor>& margins,
                                              const std::vector<torch::Tensor>& maps) const {
  const torch::Tensor m =
      models::combine_margins(margins, member_rules_).to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<Prediction> out;
  if (maps.empty()) {
    for (int64_t i = 0; i < m.numel(); ++i) out.push_back(decide(m.data_ptr<double>()[i]));
    return out;
  }
  // The members' maps combined location by location as their margins are.
  const torch::Tensor cells =
      models::combine_margins(maps, member_rules_).to(torch::kCPU, torch::kFloat).contiguous();
  const int h = static_cast<int>(cells.size(1)), w = static_cast<int>(cells.size(2));
  for (int64_t i = 0; i < m.numel(); ++i) {
    Prediction p = decide(m.data_ptr<double>()[i]);
    const float* c = cells.data_ptr<float>() + i * h * w;
    p.boxes = models::decode_boxes(std::vector<float>(c, c + h * w), w, h, decoding_);
    p.show_boxes = decoding_.show;
    for (data::ScoredBox& b : p.boxes) b.score = rule_.probability(b.score);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Prediction> Predictor::predict_with_heatmaps(const torch::Tensor& x,
                                                         torch::Tensor* maps) {
  const torch::Tensor in = x.to(device_);
  std::vector<torch::Tensor> margins, cells;
  torch::Tensor sum;
  for (Member& m : members_) {
    torch::Tensor a;
    {
      torch::NoGradGuard no_grad;
      a = feature_map(m, in);
      if (boxes_) cells.push_back(m.model->margin_map(a.to(torch::kFloat)));
    }
    const models::GradCamResult r =
        models::grad_cam_from_features(*m.model, a, x.size(2), x.size(3));
    margins.push_back(r.margins);
    sum = sum.defined() ? sum + r.maps : r.maps;
  }
  if (maps) *maps = sum / static_cast<double>(members_.size());
  return decide_all(margins, cells);
}

namespace {

// The size of `image` scaled down (never up) so that its long side is at most `max_side`.
std::pair<int, int> fit_within(const io::Image& image, int max_side) {
  const int w = image.info.width, h = image.info.height;
  const double scale = std::min(1.0, static_cast<double>(max_side) / std::max(w, h));
  return {std::max(1, static_cast<int>(std::lround(w * scale))),
          std::max(1, static_cast<int>(std::lround(h * scale)))};
}

}  // namespace

std::string modality_warning(const io::ImageInfo& info) {
  const std::string& m = info.modality;
  if (info.format != "dicom" || io::is_radiograph_modality(m)) return "";
  return "DICOM Modality '" + (m.empty() ? std::string("(none)") : m) +
         "' is not a radiograph (CR, DX, RG): scored, but the model was not made for it";
}

std::string display_png(const io::Image& image, int max_side) {
  const auto [ow, oh] = fit_within(image, max_side);
  return io::encode_grey_png(
      io::resize_image(image.pixels, image.info.width, image.info.height, ow, oh), ow, oh, 8);
}

std::vector<size_t> shown_boxes(const Prediction& p, const models::DecisionRule& rule) {
  std::vector<size_t> shown;
  if (p.decision == "no_fracture" || !p.show_boxes) return shown;
  for (size_t k = 0; k < p.boxes.size(); ++k) {
    if (k == 0 || std::string(rule.decide(p.boxes[k].score)) != "no_fracture") shown.push_back(k);
  }
  return shown;
}

report::Overlay heatmap_overlay(const io::Image& image, const torch::Tensor& map, int max_side,
                                const Prediction* prediction, const models::DecisionRule* rule) {
  const auto [ow, oh] = fit_within(image, max_side);
  const std::vector<float> grey =
      io::resize_image(image.pixels, image.info.width, image.info.height, ow, oh);
  const torch::Tensor c = map.to(torch::kCPU, torch::kFloat).contiguous();
  TORCH_CHECK(c.dim() == 2, "heatmap_overlay expects a map [S, S], got ", c.sizes());
  const std::vector<float> cv(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  const std::vector<float> cam =
      io::resize_image(cv, static_cast<int>(c.size(1)), static_cast<int>(c.size(0)), ow, oh);
  report::Overlay o = report::overlay_heatmap(grey, cam, ow, oh);
  if (prediction && rule) draw_shown_boxes(o, ow, oh, *prediction, *rule);
  return o;
}

void draw_shown_boxes(report::Overlay& image, int w, int h, const Prediction& p,
                      const models::DecisionRule& rule) {
  for (size_t k : shown_boxes(p, rule)) {
    const data::ScoredBox& b = p.boxes[k];
    const auto px = models::box_pixels(b.box, w, h);
    const bool solid = std::string(rule.decide(b.score)) == "fracture";
    report::draw_box(image, px[0], px[1], px[2], px[3], {255, 255, 255}, !solid,
                     std::max(2, std::max(w, h) / 256));
  }
}

std::string heatmap_png(const io::Image& image, const torch::Tensor& map, int max_side,
                        const Prediction* prediction, const models::DecisionRule* rule) {
  const report::Overlay o = heatmap_overlay(image, map, max_side, prediction, rule);
  return io::encode_rgb_png(o.rgb, o.width, o.height);
}

nlohmann::json boxes_json(const Prediction& p, const models::DecisionRule& rule, int width,
                          int height) {
  nlohmann::json list = nlohmann::json::array();
  const std::vector<size_t> shown = shown_boxes(p, rule);
  for (size_t k = 0; k < p.boxes.size(); ++k) {
    const data::ScoredBox& b = p.boxes[k];
    const auto px = models::box_pixels(b.box, width, height);
    list.push_back({{"x0", px[0]},
                    {"y0", px[1]},
                    {"x1", px[2]},
                    {"y1", px[3]},
                    {"probability", b.score},
                    {"band", rule.decide(b.score)},
                    {"shown", std::find(shown.begin(), shown.end(), k) != shown.end()}});
  }
  return list;
}

}  // namespace wristssl::infer
