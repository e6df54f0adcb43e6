#pragma once
// A verified model bundle, ready to score radiographs: the same preprocessing as training, the
// network, the calibrated probability and the decision (fracture / no_fracture / refer), and
// Grad-CAM on request.

#include <torch/script.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "wristssl/data/boxes.h"
#include "wristssl/data/preprocess.h"
#include "wristssl/io/image.h"
#include "wristssl/models/box_decoding.h"
#include "wristssl/models/bundle.h"
#include "wristssl/models/classifier.h"
#include "wristssl/models/ensemble.h"
#include "wristssl/report/heatmap.h"

namespace wristssl::infer {

struct PredictorOptions {
  std::string precision = "fp32";  // fp32 (scores independent of batching), bf16 or auto
  int threads = 0;                 // LibTorch threads; 0 = all cores; <0 leaves them as they are
  bool graph = true;  // CPU fp32: score with the frozen, batch-norm-folded TorchScript graph
                      // (optimize_for_inference: oneDNN convolutions with fused ReLU)
  bool boxes = true;  // decode boxes (Prediction::boxes); false leaves them empty
};

struct Prediction {
  double margin = 0;       // z_fracture - z_no_fracture
  double probability = 0;  // calibrated P(fracture)
  std::string decision;    // "fracture", "no_fracture" or "refer"
  /// Where: the boxes decoded from the per-location log-odds (models/box_decoding.h), in
  /// coordinates normalised to the image, strongest first; each score is the calibrated
  /// probability of the box's peak (the decision rule applied to it).
  std::vector<data::ScoredBox> boxes;
  bool show_boxes = true;  // the bundle's decoding says outputs show boxes (BoxDecoding::show)
};

/// The boxes an image shows (indices into p.boxes): none for an image called `no_fracture` or when
/// the model's boxes are not shown (p.show_boxes); for `fracture` or `refer`, its strongest box and
/// every other box whose own probability is in the fracture or refer band. Each is drawn solid in
/// the fracture band, dashed otherwise.
std::vector<size_t> shown_boxes(const Prediction& p, const models::DecisionRule& rule);

class Predictor {
 public:
  /// Builds the network from a verified bundle (see models::read_bundle); an ensemble bundle
  /// (models/ensemble.h) builds every member, and its probability is the mean of theirs.
  Predictor(models::Bundle bundle, const PredictorOptions& options = {});

  const models::Bundle& bundle() const { return bundle_; }
  const data::Preprocessing& preprocessing() const { return pre_; }
  /// The rule applied to the (combined) margin: the bundle's own, or the ensemble's.
  const models::DecisionRule& rule() const { return rule_; }
  /// The networks: one, or one per ensemble member.
  size_t members() const { return members_.size(); }
  models::ClassifierImpl& model(size_t member = 0) { return *members_.at(member).model; }
  c10::Device device() const { return device_; }

  /// The network input [input_size * input_size] of a decoded radiograph.
  std::vector<float> input(const io::Image& image) const;
  /// Stacks inputs into a batch [N, 1, input_size, input_size] on the model's device.
  torch::Tensor batch(const std::vector<std::vector<float>>& inputs) const;

  /// Scores a batch [N, 1, S, S] of network inputs.
  std::vector<Prediction> predict(const torch::Tensor& x);
  /// Scores a batch and returns Grad-CAM maps [N, S, S] in [0, 1] in `maps` (the backbone in the
  /// predictor's precision, the map in fp32; an ensemble's is the mean of its members' maps).
  std::vector<Prediction> predict_with_heatmaps(const torch::Tensor& x, torch::Tensor* maps);
  /// The prediction for a margin.
  Prediction decide(double margin) const;
  /// How boxes are decoded and whether they are shown (models::bundle_decoding).
  const models::BoxDecoding& box_decoding() const { return decoding_; }

 private:
  struct Member {
    models::Classifier model{nullptr};
    torch::jit::Module graph;
  };
  models::Bundle bundle_;
  data::Preprocessing pre_;
  models::DecisionRule rule_;
  std::vector<Member> members_;
  std::vector<models::DecisionRule> member_rules_;  // one per member, in order
  models::BoxDecoding decoding_;
  bool boxes_ = true;
  // The last block's activations [N, 512, h, w] of `in` on the member's graph, or its eager
  // backbone under the predictor's autocast.
  torch::Tensor feature_map(Member& m, const torch::Tensor& in);
  // The predictions from each member's margins [N] and margin maps [N, h, w] (none: no boxes).
  std::vector<Prediction> decide_all(const std::vector<torch::Tensor>& member_margins,
                                     const std::vector<torch::Tensor>& member_maps) const;

  c10::Device device_ = c10::kCPU;
  bool bf16_ = false;
  bool use_graph_ = false;
};

/// A warning for a DICOM whose Modality is not a plain radiograph (CR, DX, RG), "" otherwise: such
/// files are scored, but the model was not made for them.
std::string modality_warning(const io::ImageInfo& info);

/// The decoded radiograph as an 8-bit grey PNG at its own aspect, long side at most `max_side`
/// (for display: a browser cannot show DICOM or 16-bit).
std::string display_png(const io::Image& image, int max_side = 512);

/// The Grad-CAM overlay of `image` (as heatmap_png) as RGB pixels; with `prediction` and `rule`,
/// its shown boxes (shown_boxes) drawn on top in white: solid when the box's own probability is in
/// the fracture band, dashed otherwise.
report::Overlay heatmap_overlay(const io::Image& image, const torch::Tensor& map,
                                int max_side = 512, const Prediction* prediction = nullptr,
                                const models::DecisionRule* rule = nullptr);

/// The Grad-CAM overlay of `image` (the decoded radiograph at its own aspect, long side at most
/// `max_side`) with the map [S, S] stretched back over it and the shown box, as an RGB PNG file in
/// memory.
std::string heatmap_png(const io::Image& image, const torch::Tensor& map, int max_side = 512,
                        const Prediction* prediction = nullptr,
                        const models::DecisionRule* rule = nullptr);

/// Draws the boxes `p` shows (shown_boxes) on `image`, whose top-left `width` x `height` pixels are
/// the radiograph (a colour bar may follow on the right): white, solid when the box's own
/// probability is in the fracture band, dashed otherwise, lines 1/256 of the long side thick (at
/// least 2 px).
void draw_shown_boxes(report::Overlay& image, int width, int height, const Prediction& p,
                      const models::DecisionRule& rule);

/// The boxes of `p` as JSON for an image `width` x `height` pixels: [{"x0", "y0", "x1", "y1"
/// (pixels, x1/y1 exclusive), "probability", "band" (the decision rule's band of that probability),
/// "shown" (see shown_boxes)}].
nlohmann::json boxes_json(const Prediction& p, const models::DecisionRule& rule, int width,
                          int height);

}  // namespace wristssl::infer
