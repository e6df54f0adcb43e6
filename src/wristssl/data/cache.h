#pragma once
// The preprocessing cache: every image decoded once, resized to the configured size and stored as
// 16-bit pixels in memory-mapped segment files, keyed by file content (SHA-256) and the parameters.
// Segments are immutable and checksummed (header, index, every pixel block); a damaged one is
// detected when opened, dropped and its images decoded again, never trusted.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wristssl/data/pixel_source.h"

namespace wristssl::data {

struct CacheOptions {
  std::string dir = ".wristssl-cache";
  int image_size = 512;       // output is image_size x image_size
  bool keep_aspect = false;   // false: stretch (the paper); true: fit and pad with black
  int threads = 0;            // 0 = all cores
  int segment_images = 512;   // a segment is closed (and safe from a crash) every this many images
};

/// The cache options of a command: its cache folder, image side and threads (0 = all cores); the one
/// place commands build them.
inline CacheOptions cache_options(const std::string& dir, int image_size, int threads) {
  CacheOptions c;
  c.dir = dir;
  c.image_size = image_size;
  c.threads = threads;
  return c;
}

struct CacheStats {
  size_t reused = 0;            // found by path + size + mtime, or by content hash
  size_t decoded = 0;           // decoded now
  size_t failed = 0;            // unreadable (error kept, not retried while the file is unchanged)
  size_t damaged_segments = 0;  // segments dropped because a checksum failed
  size_t damaged_entries = 0;   // images whose cached pixels failed their checksum
};

/// (done, total) while decoding.
using ProgressFn = std::function<void(size_t, size_t)>;

class ImageCache : public PixelSource {
 public:
  /// Opens the cache for `paths`, decoding (in parallel) what is missing or damaged. Unreadable files
  /// are recorded with their reason, never thrown.
  static std::unique_ptr<ImageCache> open(const std::vector<std::string>& paths, const CacheOptions& options,
                                          const ProgressFn& progress = nullptr);
  ~ImageCache() override;
  ImageCache(const ImageCache&) = delete;
  ImageCache& operator=(const ImageCache&) = delete;

  size_t size() const override { return entries_.size(); }
  int image_size() const override { return options_.image_size; }
  bool ok(size_t i) const override { return entries_.at(i).pixels != nullptr; }
  const std::string& error(size_t i) const override { return entries_.at(i).error; }
  int original_width(size_t i) const { return entries_.at(i).width; }
  int original_height(size_t i) const { return entries_.at(i).height; }
  const uint16_t* pixels(size_t i) const override { return entries_.at(i).pixels; }
  const CacheStats& stats() const { return stats_; }
  /// The folder holding this parameter set's segments.
  const std::string& folder() const { return folder_; }

  struct Mapping;
  struct Entry {
    const uint16_t* pixels = nullptr;
    std::string error;
    int width = 0, height = 0;
  };

 private:
  ImageCache() = default;
  CacheOptions options_;
  std::string folder_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Mapping>> mappings_;
  CacheStats stats_;
};

}  // namespace wristssl::data
