#include "wristssl/report/png_thumb.h"

#include <png.h>

#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <stdexcept>

namespace wristssl::report {
namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void png_flush_nothing(png_structp) {}

// libpng reports errors by longjmp, so nothing with a destructor may live in this frame past
// setjmp.
bool png_encode_rows(const std::vector<uint8_t>& samples, int width, int height, std::string* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_append, png_flush_nothing);
  png_set_compression_level(png, 9);  // thumbnails are embedded in the page: smaller beats faster
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) {
    png_write_row(png, samples.data() + static_cast<size_t>(y) * static_cast<size_t>(width));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string png8_encode(const std::vector<float>& pixels01, int width, int height) {
  if (width <= 0 || height <= 0 ||
      static_cast<size_t>(width) * static_cast<size_t>(height) != pixels01.size()) {
    throw std::invalid_argument("png8_encode: image is " + std::to_string(width) + "x" +
                                std::to_string(height) + " but holds " +
                                std::to_string(pixels01.size()) + " pixels");
  }
  std::vector<uint8_t> samples(pixels01.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const float v = pixels01[i];
    const float clamped = std::isnan(v) ? 0.0f : std::fmin(1.0f, std::fmax(0.0f, v));
    samples[i] = static_cast<uint8_t>(std::lround(clamped * 255.0f));
  }
  std::string bytes;
  if (!png_encode_rows(samples, width, height, &bytes)) {
    throw std::runtime_error("png8_encode: libpng could not encode a " + std::to_string(width) +
                             "x" + std::to_string(height) + " image");
  }
  return bytes;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8) |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 2]));
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png8_base64(const std::vector<float>& pixels01, int width, int height) {
  return base64_encode(png8_encode(pixels01, width, height));
}

}  // namespace wristssl::report
