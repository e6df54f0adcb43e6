#pragma once
// DICOM UIDs for the objects wristssl writes. They are derived from names (a SHA-256 of what the object is
// about), so that scoring the same image with the same model again gives the same UIDs: a PACS that gets a
// result twice replaces it instead of keeping two.

#include <string>

namespace wristssl::dicom {

/// A UID for `name` under `root`:
/// - root "2.25" (the default): "2.25." + the decimal value of a UUID (RFC 9562 version 8: the first 128
///   bits of SHA-256(name), version and variant bits set), as ISO/IEC 9834-8 defines;
/// - any other root (an organisation's own): root + "." + a decimal number from SHA-256(name), as many
///   digits as fit in 64 characters (at least 16).
/// Throws std::invalid_argument when `root` is not a valid UID prefix or leaves fewer than 16 digits.
std::string uid_for(const std::string& name, const std::string& root = "2.25");

/// Whether `uid` is a valid DICOM UID: 1 to 64 characters, dot-separated decimal components without
/// leading zeros.
bool valid_uid(const std::string& uid);

}  // namespace wristssl::dicom
