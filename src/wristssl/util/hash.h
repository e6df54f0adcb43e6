#pragma once
// Content hashes: SHA-256 (cache keys, bundle checksums) and CRC-32 (cheap integrity of cached pixels).

#include <cstddef>
#include <cstdint>
#include <string>

namespace wristssl::util {

/// Lower-case hex SHA-256 of a buffer.
std::string sha256_hex(const void* data, size_t size);

/// The 32 raw bytes of a buffer's SHA-256 (e.g. a file's checksum trailer).
std::string sha256_digest(const void* data, size_t size);

/// Lower-case hex of bytes.
std::string to_hex(const std::string& bytes);

/// Lower-case hex SHA-256 of a file's bytes; throws std::runtime_error naming the path.
std::string sha256_file(const std::string& path);

/// zlib CRC-32 of a buffer (any size).
uint32_t crc32_of(const void* data, size_t size);

}  // namespace wristssl::util
