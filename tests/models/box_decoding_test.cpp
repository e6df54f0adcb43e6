#include "wristssl/models/box_decoding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace wristssl::models {
namespace {

// A w x h map of `base` log-odds.
std::vector<float> flat(int w, int h, float base) {
  return std::vector<float>(static_cast<size_t>(w) * h, base);
}

TEST(BoxDecoding, OnePeakGivesTheCellsWithinTheDrop) {
  // 10 x 10 cells at -4; a 2 x 1 block at (row 6, cols 3-4) at +3 and its neighbour (row 6, col 5)
  // at +2.5 (within the drop of 1), another (row 7, col 3) at +1 (outside).
  std::vector<float> m = flat(10, 10, -4);
  m[6 * 10 + 3] = 3, m[6 * 10 + 4] = 3, m[6 * 10 + 5] = 2.5f, m[7 * 10 + 3] = 1;
  BoxDecoding d;
  d.drop = 1;
  d.upsample = 1;
  d.max_boxes = 1;
  const std::vector<data::ScoredBox> b = decode_boxes(m, 10, 10, d);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_FLOAT_EQ(static_cast<float>(b[0].score), 3.0f);
  EXPECT_DOUBLE_EQ(b[0].box.x0, 0.3);
  EXPECT_DOUBLE_EQ(b[0].box.x1, 0.6);
  EXPECT_DOUBLE_EQ(b[0].box.y0, 0.6);
  EXPECT_DOUBLE_EQ(b[0].box.y1, 0.7);
}

TEST(BoxDecoding, TwoPeaksTwoBoxesStrongestFirstAndTheSlopeIsNoBox) {
  std::vector<float> m = flat(8, 8, -6);
  m[1 * 8 + 1] = 2;     // weaker peak, top left
  m[5 * 8 + 6] = 4;     // stronger, bottom right
  m[5 * 8 + 5] = 3.5f;  // on its slope: part of its box, never a seed of its own
  BoxDecoding d;
  d.drop = 1;
  d.upsample = 1;
  const std::vector<data::ScoredBox> b = decode_boxes(m, 8, 8, d);
  ASSERT_GE(b.size(), 2u);
  EXPECT_FLOAT_EQ(static_cast<float>(b[0].score), 4.0f);
  EXPECT_DOUBLE_EQ(b[0].box.x0, 5.0 / 8);
  EXPECT_DOUBLE_EQ(b[0].box.x1, 7.0 / 8);
  EXPECT_FLOAT_EQ(static_cast<float>(b[1].score), 2.0f);
  EXPECT_DOUBLE_EQ(b[1].box.x0, 1.0 / 8);
  EXPECT_DOUBLE_EQ(b[1].box.y1, 2.0 / 8);
  // The flat background is one plateau, one seed: at most one more box, covering everything left.
  EXPECT_LE(b.size(), 3u);
}

TEST(BoxDecoding, UpsamplingKeepsThePeakWhereItWas) {
  std::vector<float> m = flat(10, 10, -3);
  m[2 * 10 + 7] = 3;  // the cell x 0.7-0.8, y 0.2-0.3
  BoxDecoding d;      // upsample 8
  const std::vector<data::ScoredBox> b = decode_boxes(m, 10, 10, d);
  ASSERT_FALSE(b.empty());
  EXPECT_NEAR(b[0].box.cx(), 0.75, 0.02);
  EXPECT_NEAR(b[0].box.cy(), 0.25, 0.02);
  EXPECT_LT(b[0].box.x1 - b[0].box.x0, 0.15);
  EXPECT_LE(b.size(), static_cast<size_t>(d.max_boxes));
}

TEST(BoxDecoding, NonFiniteCellsAndBadSizesAndSuppression) {
  std::vector<float> m = flat(4, 4, std::numeric_limits<float>::quiet_NaN());
  BoxDecoding d;
  d.upsample = 1;
  EXPECT_TRUE(decode_boxes(m, 4, 4, d).empty());
  EXPECT_THROW(decode_boxes(m, 5, 4, d), std::invalid_argument);
  const std::vector<data::ScoredBox> kept = non_maximum_suppression(
      {{{0, 0, 0.5, 0.5}, 1}, {{0, 0, 0.5, 0.45}, 2}, {{0.6, 0.6, 0.9, 0.9}, 0.5}}, 0.5);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_DOUBLE_EQ(kept[0].score, 2);
  EXPECT_DOUBLE_EQ(kept[1].score, 0.5);
}

TEST(BoxDecoding, JsonRoundTripAndRefusals) {
  BoxDecoding d;
  d.drop = 0.5, d.max_boxes = 3;
  EXPECT_EQ(BoxDecoding::from_json(d.to_json()), d);
  EXPECT_EQ(BoxDecoding::from_json(nlohmann::json()), BoxDecoding{});
  EXPECT_THROW(BoxDecoding::from_json({{"drop", 0}}), std::invalid_argument);
  EXPECT_THROW(BoxDecoding::from_json({{"max_boxes", 0}}), std::invalid_argument);
  const auto px = box_pixels({0.1, 0.2, 0.35, 0.5}, 200, 100);
  EXPECT_EQ(px[0], 20);
  EXPECT_EQ(px[1], 20);
  EXPECT_EQ(px[2], 70);
  EXPECT_EQ(px[3], 50);
}

TEST(BoxDecoding, OnlyModelsTrainedWithBoxesShowThemUnlessTheManifestSays) {
  using nlohmann::json;
  EXPECT_FALSE(bundle_decoding(json{{"training", {{"box_loss", 0.0}}}}).show);
  EXPECT_FALSE(bundle_decoding(json::object()).show);
  EXPECT_TRUE(bundle_decoding(json{{"training", {{"box_loss", 1.0}}}}).show);
  EXPECT_TRUE(
      bundle_decoding(json{{"training", {{"box_loss", 0.0}}}, {"localisation", {{"show", true}}}})
          .show);
  EXPECT_FALSE(
      bundle_decoding(json{{"training", {{"box_loss", 1.0}}}, {"localisation", {{"show", false}}}})
          .show);
  // An ensemble shows boxes when every member was trained with them.
  const json yes = {{"training", {{"box_loss", 1.0}}}}, no = {{"training", {{"box_loss", 0.0}}}};
  EXPECT_TRUE(bundle_decoding(json{{"members", {yes, yes}}}).show);
  EXPECT_FALSE(bundle_decoding(json{{"members", {yes, no}}}).show);
  EXPECT_EQ(bundle_decoding(json{{"localisation", {{"drop", 0.5}}}}).drop, 0.5);
}

}  // namespace
}  // namespace wristssl::models
