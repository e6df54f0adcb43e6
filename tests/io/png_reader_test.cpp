#include <gtest/gtest.h>

#include <cmath>

#include "io/reference.h"
#include "wristssl/io/read_image.h"

namespace wristssl::io {
namespace {

using testing::reference;
using testing::repo_path;

// Every variant agrees with PIL pixel for pixel: exactly for grey (1, 8, 16 bit, palette), within
// float rounding of the same Rec. 601 weights for RGB(A).
class PngVariants : public ::testing::TestWithParam<std::string> {};

TEST_P(PngVariants, MatchPilPixelForPixel) {
  const std::string name = GetParam();
  const Image img = read_image(repo_path("tests/fixtures/" + name));
  const auto& ref = reference().at(name);
  ASSERT_EQ(img.info.format, "png");
  ASSERT_EQ(img.info.width, ref.at("width").get<int>());
  ASSERT_EQ(img.info.height, ref.at("height").get<int>());
  const auto& px = ref.at("pixels");
  ASSERT_EQ(img.pixels.size(), px.size());
  double max_diff = 0;
  for (size_t i = 0; i < px.size(); ++i) max_diff = std::max(max_diff, std::fabs(img.pixels[i] - px[i].get<double>()));
  EXPECT_LT(max_diff, 2e-6) << name;  // reference rounded to 6 decimals; float32 arithmetic
}

INSTANTIATE_TEST_SUITE_P(Png, PngVariants,
                         ::testing::Values("grey8.png", "rgb8.png", "rgba8.png", "palette.png", "grey1.png",
                                           "grey16.png"));

TEST(PngReader, KeepsSixteenBitsOfRealGrazpedwriImages) {
  for (const char* stem : {"0004_0542630449_01_WRI-L1_M003", "1068_1253423501_03_WRI-L2_F010",
                           "2425_1070629475_01_WRI-L2_F005"}) {
    const std::string rel = std::string("samples/grazpedwri-dx/images/") + stem + ".png";
    const Image img = read_image(repo_path(rel));
    const auto& ref = reference().at(rel);
    EXPECT_EQ(img.info.bits_stored, 16);
    EXPECT_EQ(img.info.photometric, "MONOCHROME2");
    ASSERT_EQ(img.info.width, ref.at("width").get<int>());
    ASSERT_EQ(img.info.height, ref.at("height").get<int>());
    double sum = 0;
    for (float v : img.pixels) sum += v;
    EXPECT_NEAR(sum / img.pixels.size(), ref.at("mean").get<double>(), 1e-6) << rel;
    for (const auto& p : ref.at("probes")) {
      const int y = p[0], x = p[1];
      EXPECT_NEAR(img.pixels[static_cast<size_t>(y) * img.info.width + x], p[2].get<double>(), 1e-7)
          << rel << " at " << y << "," << x;
    }
    // An 8-bit read would leave only 256 distinct values; 16-bit radiographs have thousands.
    std::vector<float> sorted = img.pixels;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_GT(std::unique(sorted.begin(), sorted.end()) - sorted.begin(), 2000) << rel;
  }
}

}  // namespace
}  // namespace wristssl::io
