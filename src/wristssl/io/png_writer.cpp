#include <png.h>

#include <cmath>
#include <stdexcept>
#include <csetjmp>
#include <string>

#include "wristssl/io/read_image.h"
#include "wristssl/util/fs.h"

namespace wristssl::io {
namespace {

void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void png_flush_nothing(png_structp) {}

// libpng reports errors by longjmp: nothing with a destructor lives in this frame past setjmp.
// `rows` holds height rows of width pixels of `channels` samples (1: grey, 3: RGB), 1 or 2 bytes
// each (native-endian for 16 bits).
bool png_encode(const void* rows, int width, int height, int bit_depth, int channels,
                int compression, std::string* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_append, png_flush_nothing);
  if (compression >= 0) png_set_compression_level(png, compression);
  png_set_IHDR(png, info, width, height, bit_depth,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (bit_depth == 16) png_set_swap(png);  // little-endian samples in memory; PNG stores big-endian
  const size_t stride =
      static_cast<size_t>(width) * static_cast<size_t>(channels) * (bit_depth / 8);
  for (int y = 0; y < height; ++y) {
    png_write_row(png, static_cast<png_const_bytep>(rows) + static_cast<size_t>(y) * stride);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string encode_grey_png(const std::vector<float>& pixels, int width, int height, int bit_depth, int compression) {
  if (width <= 0 || height <= 0 || static_cast<size_t>(width) * height != pixels.size()) {
    throw std::invalid_argument("encode_grey_png: image is " + std::to_string(width) + "x" + std::to_string(height) +
                                " but holds " + std::to_string(pixels.size()) + " pixels");
  }
  if (bit_depth != 8 && bit_depth != 16) throw std::invalid_argument("encode_grey_png: bit depth must be 8 or 16");
  const float full = bit_depth == 16 ? 65535.0f : 255.0f;
  auto quantise = [&](float v) { return std::lround((std::isnan(v) ? 0.0f : std::fmin(1.0f, std::fmax(0.0f, v))) * full); };
  std::string bytes;
  bool ok;
  if (bit_depth == 16) {
    std::vector<uint16_t> samples(pixels.size());
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<uint16_t>(quantise(pixels[i]));
    ok = png_encode(samples.data(), width, height, 16, 1, compression, &bytes);
  } else {
    std::vector<uint8_t> samples(pixels.size());
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<uint8_t>(quantise(pixels[i]));
    ok = png_encode(samples.data(), width, height, 8, 1, compression, &bytes);
  }
  if (!ok) throw std::runtime_error("libpng could not encode a " + std::to_string(width) + "x" + std::to_string(height) + " image");
  return bytes;
}

std::string encode_rgb_png(const std::vector<uint8_t>& rgb, int width, int height,
                           int compression) {
  if (width <= 0 || height <= 0 ||
      static_cast<size_t>(width) * static_cast<size_t>(height) * 3 != rgb.size()) {
    throw std::invalid_argument("encode_rgb_png: image is " + std::to_string(width) + "x" +
                                std::to_string(height) + " (3 bytes a pixel) but holds " +
                                std::to_string(rgb.size()) + " bytes");
  }
  if (compression < -1 || compression > 9) {
    throw std::invalid_argument("encode_rgb_png: compression " + std::to_string(compression) +
                                " is not -1 or 0-9");
  }
  std::string bytes;
  if (!png_encode(rgb.data(), width, height, 8, 3, compression, &bytes)) {
    throw std::runtime_error("libpng could not encode a " + std::to_string(width) + "x" +
                             std::to_string(height) + " RGB image");
  }
  return bytes;
}

void write_rgb_png(const std::vector<uint8_t>& rgb, int width, int height,
                   const std::string& path) {
  util::atomic_write(path, encode_rgb_png(rgb, width, height));
}

void write_png16(const Image& image, const std::string& path) {
  util::atomic_write(path, encode_grey_png(image.pixels, image.info.width, image.info.height, 16));
}

}  // namespace wristssl::io
