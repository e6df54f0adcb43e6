#include "wristssl/dicom/uid.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "wristssl/util/hash.h"

namespace wristssl::dicom {
namespace {

__extension__ typedef unsigned __int128 u128;

std::string decimal(u128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v > 0) {
    s.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

u128 first_128_bits(const std::string& digest) {
  u128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | static_cast<uint8_t>(digest[static_cast<size_t>(i)]);
  return v;
}

}  // namespace

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 64) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = uid.find('.', start);
    const std::string part = uid.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

std::string uid_for(const std::string& name, const std::string& root) {
  if (!valid_uid(root)) throw std::invalid_argument("not a valid UID root: '" + root + "'");
  const std::string digest = util::sha256_digest(name.data(), name.size());
  u128 v = first_128_bits(digest);
  if (root == "2.25") {
    // RFC 9562 UUID version 8 (custom, here name-based with SHA-256): version nibble 8, variant 10.
    v &= ~(u128{0xF} << 76);
    v |= u128{0x8} << 76;
    v &= ~(u128{0x3} << 62);
    v |= u128{0x2} << 62;
    return root + "." + decimal(v);
  }
  const int room = 64 - static_cast<int>(root.size()) - 1;
  if (room < 16)
    throw std::invalid_argument("UID root '" + root + "' is too long: it leaves " + std::to_string(room) +
                                " digits (at least 16 are needed)");
  std::string digits = decimal(v >> 1);  // 127 bits: at most 39 digits
  if (static_cast<int>(digits.size()) > room) digits.resize(static_cast<size_t>(room));
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
  return root + "." + digits;
}

}  // namespace wristssl::dicom
