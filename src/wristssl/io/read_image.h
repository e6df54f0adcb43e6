#pragma once
// One entry point for every radiograph format: the format is sniffed from the content, never the extension.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "wristssl/io/image.h"

namespace wristssl::io {

enum class Format { kUnknown, kPng, kJpeg, kDicom };

/// Guesses the format from the first bytes (PNG and JPEG signatures, "DICM" at 128, or a DICOM data set
/// without preamble that starts with a group 0002/0008 tag).
Format sniff_format(const uint8_t* data, size_t size);

/// Reads the whole file into memory; throws ImageError (kIo, kEmpty, kTooLarge).
std::vector<uint8_t> read_file_bytes(const std::string& path, const ReadLimits& limits = {});

/// Decodes `path` to a grey image in [0, 1]. Throws ImageError naming the file and the reason.
Image read_image(const std::string& path, const ReadLimits& limits = {});

/// Decodes an in-memory file; `name` is used in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ReadLimits& limits = {});

// One decoder per format (called by decode_image after sniffing).
Image decode_png(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits);
Image decode_dicom(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits);

/// Encodes [height, width] values in [0, 1] (NaN as 0) as a grey PNG of 8 or 16 bits; `compression` 0-9,
/// -1 for zlib's default. Throws std::invalid_argument on mismatched sizes.
std::string encode_grey_png(const std::vector<float>& pixels, int width, int height, int bit_depth,
                            int compression = -1);

/// Encodes an 8-bit RGB image: `rgb` holds [height, width, 3] interleaved samples, row-major;
/// `compression` 0-9, -1 for zlib's default. Throws std::invalid_argument unless rgb.size() ==
/// height * width * 3.
std::string encode_rgb_png(const std::vector<uint8_t>& rgb, int width, int height,
                           int compression = -1);

/// Writes `rgb` ([height, width, 3]) as an 8-bit RGB PNG, atomically.
void write_rgb_png(const std::vector<uint8_t>& rgb, int width, int height, const std::string& path);

/// Writes a 16-bit grey PNG of `image` (values in [0,1] scaled to 0..65535), atomically.
void write_png16(const Image& image, const std::string& path);

}  // namespace wristssl::io
