#include "wristssl/io/image.h"

#include <nlohmann/json.hpp>

namespace wristssl::io {

bool is_radiograph_modality(const std::string& modality) {
  return modality == "CR" || modality == "DX" || modality == "RG";
}

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kIo: return "io";
    case ErrorKind::kEmpty: return "empty";
    case ErrorKind::kNotAnImage: return "not_an_image";
    case ErrorKind::kTruncated: return "truncated";
    case ErrorKind::kCorrupt: return "corrupt";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kTooLarge: return "too_large";
  }
  return "unknown";
}

ImageError::ImageError(ErrorKind kind, std::string path, std::string reason)
    : std::runtime_error(path + ": " + error_kind_name(kind) + ": " + reason),
      kind_(kind),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

nlohmann::json info_to_json(const ImageInfo& info) {
  nlohmann::json j = {{"format", info.format},
                      {"width", info.width},
                      {"height", info.height},
                      {"bits_stored", info.bits_stored},
                      {"channels", info.channels},
                      {"photometric", info.photometric},
                      {"inverted", info.inverted}};
  if (info.pixel_spacing_row_mm) {
    j["pixel_spacing_mm"] = {*info.pixel_spacing_row_mm, info.pixel_spacing_col_mm.value_or(0.0)};
  } else {
    j["pixel_spacing_mm"] = nullptr;
  }
  if (info.format == "dicom") {
    j["transfer_syntax"] = info.transfer_syntax;
    j["transfer_syntax_name"] = info.transfer_syntax_name;
    j["window"] = info.window;
    j["frames"] = info.frames;
  }
  if (!info.modality.empty()) j["modality"] = info.modality;
  if (info.format == "jpeg") j["progressive"] = info.progressive;
  return j;
}

void check_dimensions(const std::string& name, int64_t width, int64_t height, const ReadLimits& limits) {
  if (width <= 0 || height <= 0) {
    throw ImageError(ErrorKind::kCorrupt, name,
                     "image has no pixels (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  }
  if (width > limits.max_dimension || height > limits.max_dimension ||
      width * height > limits.max_pixels) {
    throw ImageError(ErrorKind::kTooLarge, name,
                     "dimensions " + std::to_string(width) + "x" + std::to_string(height) +
                         " exceed the limits (side <= " + std::to_string(limits.max_dimension) +
                         ", pixels <= " + std::to_string(limits.max_pixels) + ")");
  }
}

}  // namespace wristssl::io
