#pragma once
// Where the fracture is, measured against annotated boxes (FracAtlas's, GRAZPEDWRI-DX's): the
// pointing game's hit rate, COCO's average precision at IoU 0.5 and the free-response ROC (FROC),
// each with a percentile-bootstrap interval over images or over groups of them (patients,
// duplicate clusters). Torch-free; coordinates normalised to the image (data/boxes.h).
//
// Definitions (README, "Where the fracture is"):
// - hit: a point (the top box's centre, or a heatmap's peak) inside a true box of its image;
//   hit rate = hits / fractured images (images with at least one true box);
// - AP@0.5 (COCO): every predicted box of every image ranked by score; a box is a true positive
// when
//   its IoU with a true box of its image not yet matched is >= 0.5 (the best such box is taken),
//   else a false positive (duplicates included); precision made monotone and averaged at the 101
//   recall points 0, 0.01, ..., 1 (0 beyond the largest recall reached);
// - FROC: the same ranking, a box a true positive when its centre lies inside a true box of its
//   image not yet found; sensitivity (found / true boxes) at the largest threshold whose false
//   positives per image (over every image, fractured or not) stay <= each rate.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wristssl/data/boxes.h"
#include "wristssl/metrics/binary_metrics.h"

namespace wristssl::metrics {

/// One image: its true boxes (empty: no fracture), the predicted boxes (any order) and optionally a
/// single point (e.g. Grad-CAM's peak) for the pointing game.
struct LocalisedImage {
  std::string group;  // bootstrap unit (empty: the image itself)
  std::vector<data::Box> truth;
  std::vector<data::ScoredBox> boxes;
  bool has_point = false;
  double point_x = 0, point_y = 0;
};

/// Whether the strongest box's centre (or, `use_point`, the point) lies in a true box; false when
/// there is none.
bool pointing_hit(const LocalisedImage& image, bool use_point = false);

/// Hit rate over the images with true boxes (and, `use_point`, a point); NaN when there are none.
/// `weights` (one per image, e.g. bootstrap counts; empty = all 1) repeat images.
double hit_rate(const std::vector<LocalisedImage>& images, bool use_point = false,
                const std::vector<int64_t>& weights = {});

/// COCO average precision at `iou` (see the top); NaN when no image has a true box.
double average_precision(const std::vector<LocalisedImage>& images, double iou = 0.5,
                         const std::vector<int64_t>& weights = {});

/// FROC sensitivity at each of `fp_per_image`; NaN when no image has a true box.
std::vector<double> froc_sensitivity(const std::vector<LocalisedImage>& images,
                                     const std::vector<double>& fp_per_image,
                                     const std::vector<int64_t>& weights = {});

struct LocalisationOptions {
  double iou = 0.5;
  std::vector<double> fp_per_image = {0.5, 1, 2};
  int bootstrap = 2000;  // resamples (0: no intervals)
  uint64_t seed = 1;
};

/// An Estimate (binary_metrics.h; here lo = hi = NaN without resamples) as {"value", "lo", "hi"},
/// null for NaN.
nlohmann::json estimate_json(const Estimate& e);

struct LocalisationReport {
  int64_t images = 0, fractured_images = 0, true_boxes = 0, predicted_boxes = 0;
  int64_t groups = 0;
  Estimate hit_rate;         // top box centre
  int64_t point_images = 0;  // fractured images with a point
  Estimate point_hit_rate;   // the points' (NaN when none)
  Estimate hit_difference;   // boxes - points on the fractured images with a point (paired)
  Estimate average_precision;
  std::vector<double> fp_per_image;
  std::vector<Estimate> froc;  // one per rate (each a 95% percentile-bootstrap interval)
  LocalisationOptions options;
  nlohmann::json to_json() const;
};

/// Every figure above with intervals from one shared set of resamples (whole groups when the
/// images name groups). Throws std::invalid_argument when no image has a true box.
LocalisationReport compute_localisation(const std::vector<LocalisedImage>& images,
                                        const LocalisationOptions& options = {});

/// The report as lines of text (for the terminal).
std::string format_localisation(const LocalisationReport& report);

/// Per-image boxes as CSV (`wristssl evaluate` writes boxes_<part>.csv): header
/// path,group,label,source,x0,y0,x1,y1,score and, per image, one row of source "image" (no
/// coordinates), one "truth" row per true box, one "box" row per predicted box (score: calibrated
/// probability) and, when it has one, a "point" row (x0 = x1, y0 = y1). Files of several folds
/// concatenated (header once) read back as their union.
std::string boxes_csv(const std::vector<std::string>& paths, const std::vector<int>& labels,
                      const std::vector<LocalisedImage>& images);

/// Reads boxes CSVs back (images keyed by path; the same path in two files is refused). Throws
/// std::runtime_error naming the file and line on a bad row.
std::vector<LocalisedImage> read_boxes_csv(const std::vector<std::string>& files,
                                           std::vector<std::string>* paths = nullptr);

}  // namespace wristssl::metrics
