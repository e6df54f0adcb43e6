#include <gtest/gtest.h>

#include <cmath>

#include "io/reference.h"
#include "wristssl/io/read_image.h"

namespace wristssl::io {
namespace {

using testing::reference;
using testing::repo_path;

struct Diff {
  double max = 0, mean = 0;
};

Diff compare(const Image& img, const nlohmann::json& px) {
  Diff d;
  for (size_t i = 0; i < px.size(); ++i) {
    const double e = std::fabs(img.pixels[i] - px[i].get<double>());
    d.max = std::max(d.max, e);
    d.mean += e / px.size();
  }
  return d;
}

TEST(JpegReader, GreyBaselineAndProgressiveMatchPilExactly) {
  for (const char* name : {"grey.jpg", "progressive.jpg"}) {
    const Image img = read_image(repo_path(std::string("tests/fixtures/") + name));
    const auto& ref = reference().at(name);
    ASSERT_EQ(img.pixels.size(), ref.at("pixels").size());
    // Same IDCT (islow) on grey data: identical 8-bit samples.
    EXPECT_LT(compare(img, ref.at("pixels")).max, 1e-6) << name;
    EXPECT_EQ(img.info.progressive, std::string(name) == "progressive.jpg");
    EXPECT_EQ(img.info.channels, 1);
  }
}

TEST(JpegReader, ColourJpegBecomesLuma) {
  const Image img = read_image(repo_path("tests/fixtures/rgb.jpg"));
  const Diff d = compare(img, reference().at("rgb.jpg").at("pixels"));
  // We take libjpeg's Y channel; PIL upsamples chroma, converts to RGB (rounded) and back to luma:
  // a difference of a level or two at colour edges, none on average.
  EXPECT_LT(d.max, 3.0 / 255);
  EXPECT_LT(d.mean, 0.6 / 255);
  EXPECT_EQ(img.info.channels, 3);
  EXPECT_EQ(img.info.photometric, "YCbCr");
}

TEST(JpegReader, RealFracAtlasRadiographsMatchPil) {
  for (const auto& [rel, ref] : reference().items()) {
    if (rel.rfind("samples/fracatlas/", 0) != 0) continue;
    const Image img = read_image(repo_path(rel));
    ASSERT_EQ(img.info.width, ref.at("width").get<int>()) << rel;
    double sum = 0;
    for (float v : img.pixels) sum += v;
    EXPECT_NEAR(sum / img.pixels.size(), ref.at("mean").get<double>(), 0.5 / 255) << rel;
    for (const auto& p : ref.at("probes")) {
      const int y = p[0], x = p[1];
      EXPECT_NEAR(img.pixels[static_cast<size_t>(y) * img.info.width + x], p[2].get<double>(), 2.5 / 255)
          << rel << " at " << y << "," << x;
    }
  }
}

TEST(JpegReader, TruncatedFracAtlasFilesAreTruncatedErrors) {
  // Flagged jpeg_truncated=1 in samples/fracatlas/labels.csv: no end marker, rows missing upstream.
  for (const char* f : {"IMG0004028.jpg", "IMG0004029.jpg"}) {
    const std::string p = repo_path(std::string("samples/fracatlas/images/Non_fractured/") + f);
    try {
      read_image(p);
      ADD_FAILURE() << p << " decoded without error";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kTruncated) << e.what();
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "error must name the file";
    }
  }
}

}  // namespace
}  // namespace wristssl::io
