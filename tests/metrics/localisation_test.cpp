#include "wristssl/metrics/localisation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace wristssl::metrics {
namespace {

using data::Box;
using data::ScoredBox;

// A fracture at x 0.40-0.50, y 0.60-0.70.
const Box kFracture{0.40, 0.60, 0.50, 0.70};

LocalisedImage fractured(std::vector<ScoredBox> boxes, std::string group = "") {
  LocalisedImage im;
  im.group = std::move(group);
  im.truth = {kFracture};
  im.boxes = std::move(boxes);
  return im;
}

TEST(Localisation, IouAndContainsByHand) {
  EXPECT_DOUBLE_EQ(data::iou(kFracture, kFracture), 1.0);
  // Half the width shifted: intersection 0.05 x 0.1, union 0.015.
  EXPECT_NEAR(data::iou(kFracture, {0.45, 0.60, 0.55, 0.70}), 0.005 / 0.015, 1e-12);
  EXPECT_DOUBLE_EQ(data::iou(kFracture, {0.50, 0.60, 0.60, 0.70}), 0.0);  // touching edges
  EXPECT_TRUE(data::contains(kFracture, 0.45, 0.65));
  EXPECT_TRUE(data::contains(kFracture, 0.40, 0.70));  // edges belong to the box
  EXPECT_FALSE(data::contains(kFracture, 0.39, 0.65));
}

TEST(Localisation, ABoxOnTheFractureIsAHitABoxBesideItIsNot) {
  const LocalisedImage on = fractured({{{0.42, 0.62, 0.48, 0.68}, 2.0}});
  const LocalisedImage beside = fractured({{{0.52, 0.62, 0.58, 0.68}, 2.0}});
  EXPECT_TRUE(pointing_hit(on));
  EXPECT_FALSE(pointing_hit(beside));
  // Only the strongest box points: a weaker box on the fracture does not rescue a strong miss.
  const LocalisedImage strong_miss =
      fractured({{{0.52, 0.62, 0.58, 0.68}, 3.0}, {{0.42, 0.62, 0.48, 0.68}, 1.0}});
  EXPECT_FALSE(pointing_hit(strong_miss));
  EXPECT_DOUBLE_EQ(hit_rate({on, beside, strong_miss}), 1.0 / 3);
  // Images without true boxes do not count; an image with no box is a miss.
  LocalisedImage negative;
  negative.boxes = {{{0.1, 0.1, 0.2, 0.2}, 5.0}};
  EXPECT_DOUBLE_EQ(hit_rate({on, negative, fractured({})}), 0.5);
  // Points: Grad-CAM's peak.
  LocalisedImage p = beside;
  p.has_point = true, p.point_x = 0.45, p.point_y = 0.65;
  EXPECT_TRUE(pointing_hit(p, true));
  EXPECT_FALSE(pointing_hit(p, false));
  EXPECT_DOUBLE_EQ(hit_rate({p, on}, true), 1.0);  // `on` has no point: left out
  // Weights repeat images.
  EXPECT_DOUBLE_EQ(hit_rate({on, beside}, false, {3, 1}), 0.75);
}

TEST(Localisation, AveragePrecisionOfPerfectAndShuffledPredictions) {
  // Four fractured images, each with its own fracture; a perfect prediction finds each exactly.
  std::vector<LocalisedImage> perfect;
  const std::vector<Box> truths = {
      {0.1, 0.1, 0.2, 0.2}, {0.5, 0.5, 0.6, 0.6}, {0.3, 0.7, 0.4, 0.8}, {0.7, 0.2, 0.8, 0.3}};
  for (size_t i = 0; i < truths.size(); ++i) {
    LocalisedImage im;
    im.truth = {truths[i]};
    im.boxes = {{truths[i], 1.0 + static_cast<double>(i)}};
    perfect.push_back(im);
  }
  EXPECT_DOUBLE_EQ(average_precision(perfect), 1.0);
  EXPECT_DOUBLE_EQ(hit_rate(perfect), 1.0);
  // Shuffled: every image gets another image's box (no overlap with its own fracture): AP 0.
  std::vector<LocalisedImage> shuffled = perfect;
  for (size_t i = 0; i < truths.size(); ++i)
    shuffled[i].boxes = {{truths[(i + 1) % truths.size()], 1.0}};
  EXPECT_DOUBLE_EQ(average_precision(shuffled), 0.0);
  EXPECT_DOUBLE_EQ(hit_rate(shuffled), 0.0);
}

TEST(Localisation, AveragePrecisionByHand) {
  // Two fractures; boxes ranked 0.9 (hit), 0.8 (miss), 0.7 (hit): precision 1 up to recall 0.5,
  // 2/3 at recall 1. COCO's 101 points: 51 at precision 1 (recall 0 ... 0.50), 50 at 2/3.
  LocalisedImage a = fractured({{kFracture, 0.9}, {{0.0, 0.0, 0.1, 0.1}, 0.8}});
  LocalisedImage b;
  b.truth = {{0.1, 0.1, 0.3, 0.3}};
  b.boxes = {{{0.1, 0.1, 0.3, 0.28}, 0.7}};  // IoU 0.9
  EXPECT_NEAR(average_precision({a, b}), (51 + 50 * 2.0 / 3) / 101, 1e-12);
  // A duplicate of an already found fracture is a false positive: a second box on `a`'s fracture
  // at 0.95 makes the ranking hit, miss(dup), miss, hit: P=1 at R=0.5, 2/4 at R=1.
  a.boxes.push_back({{0.40, 0.60, 0.50, 0.69}, 0.95});
  EXPECT_NEAR(average_precision({a, b}), (51 + 50 * 0.5) / 101, 1e-12);
  // Below the IoU threshold: a box of IoU 1/3 is a miss at 0.5 and a hit at 0.3.
  const LocalisedImage half = fractured({{{0.45, 0.60, 0.55, 0.70}, 1.0}});
  EXPECT_DOUBLE_EQ(average_precision({half}, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(average_precision({half}, 0.3), 1.0);
  // No true box anywhere: undefined.
  LocalisedImage negative;
  negative.boxes = {{kFracture, 1.0}};
  EXPECT_TRUE(std::isnan(average_precision({negative})));
}

TEST(Localisation, FrocByHand) {
  // Four images: two fractured (one fracture each), two without. Ranked boxes:
  // 0.9 hit (img0), 0.8 FP (img2), 0.7 FP (img3), 0.6 hit (img1, centre inside), 0.5 FP (img2).
  LocalisedImage i0 = fractured({{{0.41, 0.61, 0.49, 0.69}, 0.9}});
  LocalisedImage i1 = fractured({{{0.30, 0.55, 0.56, 0.75}, 0.6}});  // big box, centre (0.43, 0.65)
  LocalisedImage i2, i3;
  i2.boxes = {{{0.1, 0.1, 0.2, 0.2}, 0.8}, {{0.6, 0.6, 0.7, 0.7}, 0.5}};
  i3.boxes = {{{0.1, 0.1, 0.2, 0.2}, 0.7}};
  // FP per image after each box: 0, 0.25, 0.5, 0.5, 0.75; sensitivity 0.5, 0.5, 0.5, 1, 1.
  const std::vector<double> s = froc_sensitivity({i0, i1, i2, i3}, {0.1, 0.25, 0.5, 1.0});
  ASSERT_EQ(s.size(), 4u);
  EXPECT_DOUBLE_EQ(s[0], 0.5);
  EXPECT_DOUBLE_EQ(s[1], 0.5);
  EXPECT_DOUBLE_EQ(s[2], 1.0);
  EXPECT_DOUBLE_EQ(s[3], 1.0);
  // The big box has IoU 0.01 / 0.052 < 0.5: FROC finds it, AP@0.5 does not.
  EXPECT_LT(data::iou(i1.boxes[0].box, kFracture), 0.5);
}

TEST(Localisation, ReportIntervalsCoverTheFiguresAndPairThePoints) {
  std::vector<LocalisedImage> images;
  for (int i = 0; i < 40; ++i) {
    LocalisedImage im = fractured({{i % 4 == 0 ? Box{0.0, 0.0, 0.1, 0.1} : kFracture, 1.0}},
                                  "cluster" + std::to_string(i / 2));
    im.has_point = true;
    im.point_x = i % 2 ? 0.45 : 0.9;  // points hit on odd images
    im.point_y = 0.65;
    images.push_back(im);
  }
  LocalisationOptions o;
  o.bootstrap = 500;
  const LocalisationReport r = compute_localisation(images, o);
  EXPECT_EQ(r.fractured_images, 40);
  EXPECT_EQ(r.groups, 20);
  EXPECT_DOUBLE_EQ(r.hit_rate.value, 0.75);
  EXPECT_DOUBLE_EQ(r.point_hit_rate.value, 0.5);
  EXPECT_DOUBLE_EQ(r.hit_difference.value, 0.25);
  // One operating point (every box scores 1): recall 0.75 at precision 0.75, so 76 of the 101
  // recall points see precision 0.75.
  EXPECT_DOUBLE_EQ(r.average_precision.value, 76 * 0.75 / 101);
  EXPECT_LE(r.hit_rate.lo, 0.75);
  EXPECT_GE(r.hit_rate.hi, 0.75);
  EXPECT_LT(r.hit_rate.lo, r.hit_rate.hi);
  EXPECT_LE(r.hit_difference.lo, 0.25);
  EXPECT_GE(r.hit_difference.hi, 0.25);
  const nlohmann::json j = r.to_json();
  EXPECT_DOUBLE_EQ(j["hit_rate"]["value"].get<double>(), 0.75);
  EXPECT_EQ(j["froc"].size(), 3u);
  EXPECT_NE(format_localisation(r).find("hit rate"), std::string::npos);
  EXPECT_THROW(compute_localisation({LocalisedImage{}}), std::invalid_argument);
}

}  // namespace
}  // namespace wristssl::metrics
