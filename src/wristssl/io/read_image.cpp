#include "wristssl/io/read_image.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

namespace wristssl::io {
namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool looks_like_bare_dicom(const uint8_t* d, size_t n) {
  // A data set without preamble starts with its lowest tag: group 0002 (meta) or 0008 (identifying),
  // little endian. Explicit VR puts two upper-case letters after the tag; implicit VR a 4-byte length.
  if (n < 8) return false;
  const uint16_t group = static_cast<uint16_t>(d[0] | (d[1] << 8));
  if (group != 0x0002 && group != 0x0008) return false;
  const uint16_t element = static_cast<uint16_t>(d[2] | (d[3] << 8));
  if (element > 0x0020) return false;
  const bool explicit_vr = d[4] >= 'A' && d[4] <= 'Z' && d[5] >= 'A' && d[5] <= 'Z';
  if (explicit_vr) return true;
  const uint32_t len = static_cast<uint32_t>(d[4] | (d[5] << 8) | (d[6] << 16)) |
                       (static_cast<uint32_t>(d[7]) << 24);
  return len < 1024;  // the first elements (lengths, type, charset) are short
}

// Why stat or fopen failed, in words a user can act on: a link loop and a dangling link say so
// rather than "no such file".
std::string why_not_openable(const std::string& path, int err) {
  switch (err) {
    case ELOOP:
      return "too many levels of symbolic links (a link loop)";
    case EACCES:
    case EPERM:
      return "permission denied";
    case EISDIR:
      return "is a folder, not a file";
    case ENOENT: {
      struct stat lst {};
      if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
        std::error_code ec;
        const std::string target = std::filesystem::read_symlink(path, ec).string();
        return "dangling symbolic link" +
               (ec ? std::string() : " (points to " + target + ", which does not exist)");
      }
      return "no such file";
    }
    default:
      return std::string("cannot open: ") + std::strerror(err);
  }
}

}  // namespace

Format sniff_format(const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return Format::kPng;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return Format::kJpeg;
  if (size >= 132 && std::memcmp(data + 128, "DICM", 4) == 0) return Format::kDicom;
  if (looks_like_bare_dicom(data, size)) return Format::kDicom;
  return Format::kUnknown;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, const ReadLimits& limits) {
  // stat before opening: fopen succeeds on a folder and blocks on a named pipe.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ImageError(ErrorKind::kIo, path, why_not_openable(path, errno));
  if (!S_ISREG(st.st_mode)) {
    throw ImageError(ErrorKind::kIo, path,
                     S_ISDIR(st.st_mode) ? "is a folder, not a file"
                                         : "not a regular file (a device, pipe or socket)");
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw ImageError(ErrorKind::kIo, path, why_not_openable(path, errno));
  if (std::fseek(f.get(), 0, SEEK_END) != 0) {
    throw ImageError(ErrorKind::kIo, path, "cannot seek (not a regular file?)");
  }
  const long size = std::ftell(f.get());
  if (size < 0) throw ImageError(ErrorKind::kIo, path, "cannot tell the file size");
  if (size == 0) throw ImageError(ErrorKind::kEmpty, path, "the file is empty (0 bytes)");
  if (size > limits.max_file_bytes) {
    throw ImageError(ErrorKind::kTooLarge, path,
                     "file of " + std::to_string(size) + " bytes exceeds the limit of " +
                         std::to_string(limits.max_file_bytes));
  }
  std::rewind(f.get());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    throw ImageError(ErrorKind::kIo, path, "short read");
  }
  return bytes;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits) {
  if (size == 0) throw ImageError(ErrorKind::kEmpty, name, "the file is empty (0 bytes)");
  switch (sniff_format(data, size)) {
    case Format::kPng: return decode_png(data, size, name, limits);
    case Format::kJpeg: return decode_jpeg(data, size, name, limits);
    case Format::kDicom: return decode_dicom(data, size, name, limits);
    case Format::kUnknown: break;
  }
  throw ImageError(ErrorKind::kNotAnImage, name,
                   "no PNG, JPEG or DICOM signature in the first bytes (the extension is not trusted)");
}

Image read_image(const std::string& path, const ReadLimits& limits) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, limits);
  return decode_image(bytes.data(), bytes.size(), path, limits);
}

}  // namespace wristssl::io
