#pragma once
// The decoded radiograph and the typed error every reader throws.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wristssl::io {

/// Why an input could not be decoded; stable names for logs and JSON (see error_kind_name).
enum class ErrorKind {
  kIo,           // cannot open or read the file
  kEmpty,        // zero bytes
  kNotAnImage,   // no known signature
  kTruncated,    // the data ends before the image does
  kCorrupt,      // malformed data (bad chunk, bad marker, bad tag)
  kUnsupported,  // a valid file we do not handle (photometric, bit depth, transfer syntax)
  kTooLarge,     // dimensions or a length field beyond the limits
};

/// "io", "empty", "not_an_image", "truncated", "corrupt", "unsupported", "too_large".
const char* error_kind_name(ErrorKind kind);

/// Whether a DICOM Modality is a plain radiograph: CR, DX or RG (what the models are made for).
bool is_radiograph_modality(const std::string& modality);

/// Thrown by every reader: names the file, the kind and the reason.
class ImageError : public std::runtime_error {
 public:
  ImageError(ErrorKind kind, std::string path, std::string reason);
  ErrorKind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  ErrorKind kind_;
  std::string path_;
  std::string reason_;
};

/// What the file said about itself.
struct ImageInfo {
  std::string format;  // "png", "jpeg", "dicom"
  int width = 0;
  int height = 0;
  int bits_stored = 0;         // significant bits per sample in the file
  int channels = 0;            // samples per pixel in the file (converted to one)
  std::string photometric;     // "MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE", "GRAY_ALPHA", ...
  bool inverted = false;       // MONOCHROME1 was inverted so that bone is bright
  std::optional<double> pixel_spacing_row_mm;  // distance between rows, when known
  std::optional<double> pixel_spacing_col_mm;  // distance between columns, when known
  std::string transfer_syntax;  // DICOM transfer syntax UID ("" for PNG / JPEG)
  std::string transfer_syntax_name;
  std::string window;           // DICOM: "file VOI window c=..,w=..", "VOI LUT", "min-max of stored range"
  int frames = 1;               // DICOM number of frames; frame 0 is decoded
  bool progressive = false;     // JPEG progressive
  std::string modality;         // DICOM (0008,0060): "CR", "DX", ...; "" when absent or not DICOM
};

/// A grey image: `pixels` holds height*width values in [0, 1], row-major, bone bright.
struct Image {
  ImageInfo info;
  std::vector<float> pixels;
};

/// Limits every reader enforces before allocating.
struct ReadLimits {
  int64_t max_dimension = 32768;          // per side
  int64_t max_pixels = 400LL * 1000 * 1000;  // width * height
  int64_t max_file_bytes = 2LL << 30;     // 2 GiB
};

/// The metadata as JSON (optional fields only when known).
nlohmann::json info_to_json(const ImageInfo& info);

/// Throws ImageError(kTooLarge or kCorrupt) unless 0 < width, height <= max_dimension and
/// width * height <= max_pixels.
void check_dimensions(const std::string& name, int64_t width, int64_t height, const ReadLimits& limits);

}  // namespace wristssl::io
