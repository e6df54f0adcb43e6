#pragma once
// Boxes from a classifier's per-location fracture log-odds (its margin map, models/classifier.h):
// the map is enlarged bilinearly, every local maximum above the floor seeds a box that covers the
// connected cells within `drop` log-odds of its peak (cells already taken by a stronger peak
// excluded), strongest first, overlapping boxes suppressed (non-maximum suppression). A box's score
// is its peak log-odds, so that the bundle's decision rule turns it into a calibrated probability
// on the image decision's scale. For a log-sum-exp model trained with FracAtlas's boxes the map is
// a learned localiser; for an average-pooled model it is its class activation map (Zhou et al.
// 2016: its mean over the locations is the image's margin). Torch-free.

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wristssl/data/boxes.h"

namespace wristssl::models {

struct BoxDecoding {
  // A box spans the connected cells within this many log-odds of its peak. 0.25 was chosen on the
  // validation parts of the accuracy study's five fine-box fold models (mean hit rate 0.151 against
  // 0.134 at 0.5 and 0.111 at 1; README, "Where the fracture is"), never on their test folds.
  double drop = 0.25;
  int max_boxes = 5;     // strongest first
  int upsample = 8;      // the map is enlarged this many times before decoding
  double nms_iou = 0.5;  // a box overlapping a stronger one by more than this is dropped
  // Whether outputs show (draw, list as shown, put in DICOM results) the boxes; they are decoded
  // and listed either way. A bundle's manifest may say; when it does not, only a model whose map
  // was trained with boxes shows them (see shows_boxes).
  bool show = true;
  bool operator==(const BoxDecoding& o) const {
    return drop == o.drop && max_boxes == o.max_boxes && upsample == o.upsample &&
           nms_iou == o.nms_iou && show == o.show;
  }
  nlohmann::json to_json() const;
  /// Absent keys take the defaults; out-of-range values throw std::invalid_argument naming them.
  static BoxDecoding from_json(const nlohmann::json& j);
};

/// The decoding a bundle's manifest asks for ("localisation"; defaults when absent). Unless the
/// manifest says "show", boxes are shown only when every model in it was trained with a box loss
/// (training.box_loss > 0, the manifest's own or each ensemble member's): an average-pooled
/// classifier's activation map found the fracture's box in 2% of FracAtlas hands out of fold, too
/// rarely to draw it (README, "Where the fracture is"). Throws std::invalid_argument on bad values.
BoxDecoding bundle_decoding(const nlohmann::json& manifest);

/// The boxes of one margin map `map` [height, width] (row-major log-odds; the map covers the whole
/// network input, so cell (r, c) spans x in [c / width, (c + 1) / width) of the image, normalised;
/// the stretch preprocessing keeps normalised coordinates those of the original image). Scores are
/// peak log-odds, strongest first. Non-finite values are treated as -infinity.
std::vector<data::ScoredBox> decode_boxes(const std::vector<float>& map, int width, int height,
                                          const BoxDecoding& decoding = {});

/// Greedy non-maximum suppression: `boxes` sorted by score (strongest first), a box dropped when it
/// overlaps a kept one by IoU > `iou`.
std::vector<data::ScoredBox> non_maximum_suppression(std::vector<data::ScoredBox> boxes,
                                                     double iou);

/// The box in pixels of an image `width` x `height`: {x0, y0, x1, y1}, rounded outward.
std::array<int, 4> box_pixels(const data::Box& b, int width, int height);

}  // namespace wristssl::models
