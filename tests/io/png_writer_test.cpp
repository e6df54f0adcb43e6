// encode_grey_png / encode_rgb_png: what is written is read back exactly, by libpng itself (not
// only by our own reader) and through read_image's Rec. 601 conversion to grey.

#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_paths.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/fs.h"

namespace wristssl::io {
namespace {

struct Decoded {
  int width = 0, height = 0;
  png_uint_32 format = 0;  // the file's own format (PNG_FORMAT_FLAG_COLOR etc.)
  std::vector<uint8_t> rgb;
};

// Decodes with libpng's simplified API to 8-bit RGB.
Decoded libpng_decode(const std::string& bytes) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  Decoded d;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    ADD_FAILURE() << "libpng: " << image.message;
    return d;
  }
  d.width = static_cast<int>(image.width);
  d.height = static_cast<int>(image.height);
  d.format = image.format;
  image.format = PNG_FORMAT_RGB;
  d.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, d.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << "libpng: " << image.message;
  }
  return d;
}

// A 7x5 image with every channel varying independently, saturated colours and pure greys.
std::vector<uint8_t> test_pattern(int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &rgb[static_cast<size_t>((y * width + x) * 3)];
      p[0] = static_cast<uint8_t>(x * 37 + y * 11);
      p[1] = static_cast<uint8_t>(255 - x * 29);
      p[2] = static_cast<uint8_t>(y * 61 + x);
    }
  }
  const uint8_t corners[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {128, 128, 128}};
  const size_t at[4] = {0, static_cast<size_t>(width - 1),
                        static_cast<size_t>((height - 1) * width),
                        static_cast<size_t>(height * width - 1)};
  for (int k = 0; k < 4; ++k) {
    for (int c = 0; c < 3; ++c) rgb[at[k] * 3 + static_cast<size_t>(c)] = corners[k][c];
  }
  return rgb;
}

TEST(PngWriter, RgbRoundTripsExactlyThroughLibpng) {
  const int w = 7, h = 5;
  const std::vector<uint8_t> rgb = test_pattern(w, h);
  for (int compression : {-1, 0, 9}) {
    const std::string png = encode_rgb_png(rgb, w, h, compression);
    const Decoded d = libpng_decode(png);
    EXPECT_EQ(d.width, w);
    EXPECT_EQ(d.height, h);
    EXPECT_TRUE(d.format & PNG_FORMAT_FLAG_COLOR) << "written as colour, not grey";
    EXPECT_FALSE(d.format & PNG_FORMAT_FLAG_ALPHA);
    EXPECT_EQ(d.rgb, rgb) << "compression " << compression;
  }
}

TEST(PngWriter, RgbReadBackAsGreyIsRec601Luma) {
  const int w = 7, h = 5;
  const std::vector<uint8_t> rgb = test_pattern(w, h);
  const std::string png = encode_rgb_png(rgb, w, h);
  const Image img =
      decode_png(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "rgb.png", {});
  EXPECT_EQ(img.info.photometric, "RGB");
  EXPECT_EQ(img.info.channels, 3);
  ASSERT_EQ(img.pixels.size(), static_cast<size_t>(w * h));
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    const double luma =
        (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]) / 255.0;
    EXPECT_NEAR(img.pixels[i], luma, 1e-5) << "pixel " << i;
  }
  EXPECT_NEAR(img.pixels[0], 0.299, 1e-5) << "pure red";
  EXPECT_NEAR(img.pixels[static_cast<size_t>(w - 1)], 0.587, 1e-5) << "pure green";
}

TEST(PngWriter, WriteRgbPngIsReadableFromDisk) {
  const std::string dir = testing::temp_dir("rgbpng");
  const std::vector<uint8_t> rgb = test_pattern(3, 2);
  write_rgb_png(rgb, 3, 2, dir + "/sub/out.png");
  const Decoded d = libpng_decode(util::read_text(dir + "/sub/out.png"));
  EXPECT_EQ(d.rgb, rgb);
  EXPECT_EQ(read_image(dir + "/sub/out.png").info.width, 3);
}

TEST(PngWriter, RgbSizeMismatchThrows) {
  const std::vector<uint8_t> rgb(2 * 3 * 3);
  EXPECT_NO_THROW(encode_rgb_png(rgb, 2, 3));
  EXPECT_THROW(encode_rgb_png(rgb, 3, 3), std::invalid_argument);
  EXPECT_THROW(encode_rgb_png(std::vector<uint8_t>(2 * 3), 2, 3), std::invalid_argument)
      << "grey, not RGB";
  EXPECT_THROW(encode_rgb_png({}, 0, 0), std::invalid_argument);
  EXPECT_THROW(encode_rgb_png(rgb, -2, -3), std::invalid_argument);
  EXPECT_THROW(encode_rgb_png(rgb, 2, 3, 10), std::invalid_argument);
  EXPECT_THROW(write_rgb_png(rgb, 3, 3, testing::temp_dir("rgbbad") + "/x.png"),
               std::invalid_argument);
}

TEST(PngWriter, GreyEightAndSixteenBitRoundTrip) {
  const std::vector<float> grey = {0.0f, 0.25f, 0.5f, 1.0f, NAN, 2.0f};
  for (int bits : {8, 16}) {
    const std::string png = encode_grey_png(grey, 3, 2, bits);
    const Image img =
        decode_png(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "g.png", {});
    EXPECT_EQ(img.info.bits_stored, bits);
    const double step = bits == 8 ? 1.0 / 255 : 1.0 / 65535;
    const std::vector<double> want = {0.0, 0.25, 0.5, 1.0, 0.0, 1.0};  // NaN as 0, clamped
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(img.pixels[i], want[i], step / 2 + 1e-7) << i;
  }
}

}  // namespace
}  // namespace wristssl::io
