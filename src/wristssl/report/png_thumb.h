#pragma once
// Small grey thumbnails for the HTML report: 8-bit PNG encoded in memory, then base64 for a data:
// URI.

#include <string>
#include <string_view>
#include <vector>

namespace wristssl::report {

/// Encodes `pixels01` (height * width values, row-major, clamped to [0, 1]) as an 8-bit grey PNG
/// file held in memory. Throws std::invalid_argument naming the sizes when they do not match.
std::string png8_encode(const std::vector<float>& pixels01, int width, int height);

/// Standard base64 (RFC 4648, with '=' padding, no line breaks).
std::string base64_encode(std::string_view bytes);

/// Decodes standard base64 (padding optional, line breaks ignored); throws std::invalid_argument on a
/// character outside the alphabet.
std::string base64_decode(std::string_view text);

/// base64_encode(png8_encode(...)): ready for `<img src="data:image/png;base64,...">`.
std::string png8_base64(const std::vector<float>& pixels01, int width, int height);

}  // namespace wristssl::report
