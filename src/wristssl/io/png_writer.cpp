#include <png.h>

#include <cmath>
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

bool png_encode16(const std::vector<uint16_t>& samples, int width, int height, std::string* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_append, png_flush_nothing);
  png_set_IHDR(png, info, width, height, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_set_swap(png);  // our samples are little-endian in memory; PNG stores big-endian
  for (int y = 0; y < height; ++y) {
    png_write_row(png, reinterpret_cast<png_const_bytep>(samples.data() + static_cast<size_t>(y) * width));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_png16(const Image& image, const std::string& path) {
  const int w = image.info.width, h = image.info.height;
  if (static_cast<size_t>(w) * h != image.pixels.size() || w <= 0 || h <= 0) {
    throw std::runtime_error("write_png16 " + path + ": image is " + std::to_string(w) + "x" +
                             std::to_string(h) + " but holds " + std::to_string(image.pixels.size()) +
                             " pixels");
  }
  std::vector<uint16_t> samples(image.pixels.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const float v = std::fmin(1.0f, std::fmax(0.0f, image.pixels[i]));
    samples[i] = static_cast<uint16_t>(std::lround(v * 65535.0f));
  }
  std::string bytes;
  if (!png_encode16(samples, w, h, &bytes)) throw std::runtime_error("libpng could not encode " + path);
  util::atomic_write(path, bytes);
}

}  // namespace wristssl::io
