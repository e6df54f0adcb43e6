#include "wristssl/report/png_thumb.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "wristssl/io/read_image.h"

namespace wristssl::report {
namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string png8_encode(const std::vector<float>& pixels01, int width, int height) {
  // Thumbnails are embedded in the page: smaller beats faster.
  return io::encode_grey_png(pixels01, width, height, 8, 9);
}

std::string base64_decode(std::string_view text) {
  std::string out;
  uint32_t val = 0;
  int bits = -8;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    const char* p = std::strchr(kBase64Alphabet, c);
    if (c == '\0' || p == nullptr)
      throw std::invalid_argument("not base64: a character outside the alphabet");
    val = (val << 6) | static_cast<uint32_t>(p - kBase64Alphabet);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
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
