// JPEG through libjpeg-turbo: baseline and progressive, 8-bit, grey / YCbCr / RGB to grey.
// A file that ends early is an error, not a grey-filled image: libjpeg only warns (JWRN_JPEG_EOF) and
// pads the missing rows, which would be silently wrong pixels.
#include <jerror.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "wristssl/io/read_image.h"

namespace wristssl::io {
namespace {

constexpr int kMaxScans = 1000;  // progressive files with endless scans are a CPU bomb

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  int first_warning;  // libjpeg message code of the first data warning, 0 if none
  bool too_many_scans;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (level < 0) {  // a warning: corrupt or missing data
    const int code = cinfo->err->msg_code;
    // Extraneous bytes before a marker are common in real files and harmless to the pixels.
    if (code != JWRN_EXTRANEOUS_DATA && err->first_warning == 0) {
      err->first_warning = code;
      (*cinfo->err->format_message)(cinfo, err->message);
    }
  }
}

void jpeg_on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    reinterpret_cast<JpegError*>(cinfo->err)->too_many_scans = true;
    std::snprintf(reinterpret_cast<JpegError*>(cinfo->err)->message, JMSG_LENGTH_MAX,
                  "more than %d progressive scans", kMaxScans);
    longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1);
  }
}

struct JpegHeader {
  int width = 0, height = 0, components = 0, precision = 0;
  J_COLOR_SPACE color = JCS_UNKNOWN;
  bool progressive = false;
  int density_unit = 0, x_density = 0, y_density = 0;
};

// libjpeg between setjmp and longjmp; only trivially destructible locals here.
template <typename Allocate>
bool jpeg_decode_rows(const uint8_t* data, size_t size, const ReadLimits& limits, JpegError* err,
                      JpegHeader* header, Allocate allocate, uint8_t** out) {
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_on_error;
  err->mgr.emit_message = jpeg_on_message;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = jpeg_on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  header->width = static_cast<int>(cinfo.image_width);
  header->height = static_cast<int>(cinfo.image_height);
  header->components = cinfo.num_components;
  header->precision = cinfo.data_precision;
  header->color = cinfo.jpeg_color_space;
  header->progressive = cinfo.progressive_mode;
  header->density_unit = cinfo.density_unit;
  header->x_density = cinfo.X_density;
  header->y_density = cinfo.Y_density;
  if (cinfo.image_width > static_cast<JDIMENSION>(limits.max_dimension) ||
      cinfo.image_height > static_cast<JDIMENSION>(limits.max_dimension) ||
      static_cast<int64_t>(cinfo.image_width) * cinfo.image_height > limits.max_pixels ||
      cinfo.image_width == 0 || cinfo.image_height == 0) {
    jpeg_destroy_decompress(&cinfo);
    return true;  // the caller reports the dimensions
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    std::snprintf(err->message, JMSG_LENGTH_MAX, "CMYK / YCCK JPEG is not a radiograph");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = JCS_GRAYSCALE;  // luma of YCbCr / RGB; grey stays grey
  cinfo.dct_method = JDCT_ISLOW;          // the accurate IDCT, as reference decoders use
  jpeg_start_decompress(&cinfo);
  allocate(*header);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = *out + static_cast<size_t>(cinfo.output_scanline) * cinfo.output_width;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

const char* jpeg_color_name(J_COLOR_SPACE c) {
  switch (c) {
    case JCS_GRAYSCALE: return "MONOCHROME2";
    case JCS_YCbCr: return "YCbCr";
    case JCS_RGB: return "RGB";
    case JCS_CMYK: return "CMYK";
    case JCS_YCCK: return "YCCK";
    default: return "unknown";
  }
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits) {
  JpegError err{};
  JpegHeader header;
  std::vector<uint8_t> buffer;
  uint8_t* out = nullptr;
  auto allocate = [&](const JpegHeader& h) {
    buffer.resize(static_cast<size_t>(h.width) * h.height);
    out = buffer.data();
  };
  const bool ok = jpeg_decode_rows(data, size, limits, &err, &header, allocate, &out);
  if (!ok) {
    const std::string msg = err.message;
    if (err.too_many_scans) throw ImageError(ErrorKind::kCorrupt, name, "JPEG: " + msg);
    if (msg.find("Premature end") != std::string::npos) {
      throw ImageError(ErrorKind::kTruncated, name, "JPEG: " + msg);
    }
    if (msg.find("Unsupported") != std::string::npos || msg.find("CMYK") != std::string::npos ||
        msg.find("precision") != std::string::npos) {
      throw ImageError(ErrorKind::kUnsupported, name, "JPEG: " + msg);
    }
    throw ImageError(ErrorKind::kCorrupt, name, "JPEG: " + msg);
  }
  check_dimensions(name, header.width, header.height, limits);
  if (err.first_warning == JWRN_JPEG_EOF) {
    throw ImageError(ErrorKind::kTruncated, name,
                     "JPEG data ends before the image does (no end-of-image marker; rows missing)");
  }
  if (err.first_warning != 0) {
    throw ImageError(ErrorKind::kCorrupt, name, std::string("JPEG: corrupt data: ") + err.message);
  }

  Image image;
  ImageInfo& info = image.info;
  info.format = "jpeg";
  info.width = header.width;
  info.height = header.height;
  info.bits_stored = header.precision;
  info.channels = header.components;
  info.photometric = jpeg_color_name(header.color);
  info.progressive = header.progressive;
  // JFIF density is not trusted as pixel spacing: encoders write 72 dpi by default.
  image.pixels.resize(buffer.size());
  constexpr float kScale = 1.0f / 255.0f;
  for (size_t i = 0; i < buffer.size(); ++i) image.pixels[i] = buffer[i] * kScale;
  return image;
}

}  // namespace wristssl::io
