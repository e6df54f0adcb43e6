// PNG through libpng's classic API: 1-16 bit grey, RGB(A), palette; 16-bit samples are kept as 16-bit.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "wristssl/io/read_image.h"

namespace wristssl::io {
namespace {

constexpr png_alloc_size_t kMaxAncillaryChunkBytes = 16u << 20;  // iCCP / zTXt bombs

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  bool truncated;
  char message[256];
  char warning[256];  // libpng explains a bad IHDR in warnings, then errors with "Invalid IHDR data"
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) {
    src->truncated = true;
    png_error(png, "the data ends early");
  }
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

void png_on_error(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof(src->message), "%s", msg);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  if (src->warning[0] == 0) std::snprintf(src->warning, sizeof(src->warning), "%s", msg);
}

struct PngLayout {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  int channels_after = 0;  // samples per pixel after the transforms
  bool sixteen = false;
  double spacing_mm = 0;
};

// Runs libpng between setjmp and longjmp: only trivially destructible locals live in this frame.
// `rows` is sized by the caller through `allocate` once the header is known.
template <typename Allocate>
bool png_decode_rows(PngSource* src, const ReadLimits& limits, PngLayout* layout, Allocate allocate,
                     std::vector<png_bytep>* rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, png_on_error, png_on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, src, png_read_from_memory);
  png_set_user_limits(png, static_cast<png_uint_32>(limits.max_dimension),
                      static_cast<png_uint_32>(limits.max_dimension));
  png_set_chunk_malloc_max(png, kMaxAncillaryChunkBytes);
  png_read_info(png, info);
  png_get_IHDR(png, info, &layout->width, &layout->height, &layout->bit_depth, &layout->color_type,
               &layout->interlace, nullptr, nullptr);
  png_uint_32 res_x = 0, res_y = 0;
  int unit = 0;
  if (png_get_pHYs(png, info, &res_x, &res_y, &unit) && unit == PNG_RESOLUTION_METER && res_x > 0 &&
      res_x == res_y) {
    layout->spacing_mm = 1000.0 / res_x;
  }
  if (static_cast<int64_t>(layout->width) * layout->height > limits.max_pixels) {
    std::snprintf(src->message, sizeof(src->message), "dimensions exceed the pixel limit");
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  if (layout->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (layout->color_type == PNG_COLOR_TYPE_GRAY && layout->bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  if (layout->color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  layout->sixteen = layout->bit_depth == 16;
  if (layout->sixteen) png_set_swap(png);  // native little-endian uint16
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  layout->channels_after = png_get_channels(png, info);
  allocate(*layout);
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

std::string png_color_name(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return "MONOCHROME2";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "GRAY_ALPHA";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    case PNG_COLOR_TYPE_PALETTE: return "PALETTE";
  }
  return "unknown";
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits) {
  PngSource src{data, size, 0, false, {0}, {0}};
  PngLayout layout;
  std::vector<uint8_t> buffer;
  std::vector<png_bytep> rows;
  auto allocate = [&](const PngLayout& l) {
    const size_t bytes_per_sample = l.sixteen ? 2 : 1;
    const size_t stride = static_cast<size_t>(l.width) * l.channels_after * bytes_per_sample;
    buffer.resize(stride * l.height);
    rows.resize(l.height);
    for (png_uint_32 y = 0; y < l.height; ++y) rows[y] = buffer.data() + y * stride;
  };
  bool ok = false;
  try {
    ok = png_decode_rows(&src, limits, &layout, allocate, &rows);
  } catch (const std::bad_alloc&) {
    throw ImageError(ErrorKind::kTooLarge, name, "out of memory while decoding");
  }
  if (!ok) {
    if (src.truncated) throw ImageError(ErrorKind::kTruncated, name, "PNG data ends before the image does");
    std::string msg = src.message[0] ? src.message : "libpng could not start";
    if (src.warning[0]) msg += std::string(" (") + src.warning + ")";
    if (msg.find("exceed") != std::string::npos || msg.find("too large") != std::string::npos) {
      throw ImageError(ErrorKind::kTooLarge, name, "PNG: " + msg);
    }
    throw ImageError(ErrorKind::kCorrupt, name, "PNG: " + msg);
  }
  check_dimensions(name, layout.width, layout.height, limits);

  Image image;
  ImageInfo& info = image.info;
  info.format = "png";
  info.width = static_cast<int>(layout.width);
  info.height = static_cast<int>(layout.height);
  info.bits_stored = layout.bit_depth;
  info.channels = (layout.color_type == PNG_COLOR_TYPE_GRAY) ? 1
                  : (layout.color_type == PNG_COLOR_TYPE_GRAY_ALPHA) ? 2
                  : (layout.color_type == PNG_COLOR_TYPE_RGB_ALPHA) ? 4
                  : 3;
  info.photometric = png_color_name(layout.color_type);
  if (layout.spacing_mm > 0) info.pixel_spacing_row_mm = info.pixel_spacing_col_mm = layout.spacing_mm;

  // Sub-8-bit grey was expanded to 8 bits by libpng with bit replication, so 8-bit full scale applies.
  const int effective_depth = layout.sixteen ? 16 : 8;
  const float scale = 1.0f / static_cast<float>((1 << effective_depth) - 1);
  const size_t n = static_cast<size_t>(layout.width) * layout.height;
  const int c = layout.channels_after;
  image.pixels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    float v;
    auto sample = [&](int k) -> float {
      return layout.sixteen ? reinterpret_cast<const uint16_t*>(buffer.data())[i * c + k]
                            : buffer[i * c + k];
    };
    if (c == 1) {
      v = sample(0);
    } else {
      // Rec. 601 luma, as libjpeg uses for grey output, so PNG and JPEG of the same RGB agree.
      v = 0.299f * sample(0) + 0.587f * sample(1) + 0.114f * sample(2);
    }
    image.pixels[i] = v * scale;
  }
  return image;
}

}  // namespace wristssl::io
