#include "wristssl/data/cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "wristssl/data/preprocess.h"
#include "wristssl/io/read_image.h"
#include "wristssl/io/resize.h"
#include "wristssl/util/hash.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::data {
namespace {

constexpr char kMagic[8] = {'W', 'S', 'S', 'L', 'S', 'E', 'G', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kBlocksOffset = 4096;

struct SegmentHeader {
  char magic[8];
  uint32_t version;
  uint32_t image_size;
  uint32_t keep_aspect;
  uint32_t count;  // pixel blocks
  uint64_t index_offset;
  uint64_t index_bytes;
  uint32_t index_crc;
  uint32_t header_crc;  // CRC-32 of every byte above
};

uint32_t header_crc(const SegmentHeader& h) { return util::crc32_of(&h, offsetof(SegmentHeader, header_crc)); }

struct FileStamp {
  int64_t size = -1;
  int64_t mtime_ns = -1;
};

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

// One cached image as the index describes it.
struct IndexEntry {
  std::string sha, path, error;
  FileStamp stamp;
  int64_t block = -1;
  uint32_t crc = 0;
  int width = 0, height = 0;
  const uint16_t* pixels = nullptr;  // resolved against the segment mapping
};

json to_json(const IndexEntry& e) {
  return {{"sha", e.sha}, {"path", e.path}, {"size", e.stamp.size}, {"mtime", e.stamp.mtime_ns},
          {"block", e.block}, {"crc", e.crc}, {"w", e.width}, {"h", e.height}, {"error", e.error}};
}

IndexEntry from_json(const json& j) {
  IndexEntry e;
  e.sha = j.at("sha").get<std::string>();
  e.path = j.at("path").get<std::string>();
  e.stamp = {j.at("size").get<int64_t>(), j.at("mtime").get<int64_t>()};
  e.block = j.at("block").get<int64_t>();
  e.crc = j.at("crc").get<uint32_t>();
  e.width = j.at("w").get<int>();
  e.height = j.at("h").get<int>();
  e.error = j.at("error").get<std::string>();
  return e;
}

size_t block_bytes(int image_size) { return static_cast<size_t>(image_size) * image_size * sizeof(uint16_t); }

int thread_count(int requested) {
  return requested > 0 ? requested : std::max(1u, std::thread::hardware_concurrency());
}

// Appends blocks to a temp file; finish() writes the index and header and renames it into place.
class SegmentWriter {
 public:
  SegmentWriter(const std::string& folder, const CacheOptions& o) : folder_(folder), options_(o) {
    tmp_ = folder + "/.segment-XXXXXX";
    fd_ = ::mkstemp(tmp_.data());
    if (fd_ < 0) throw std::runtime_error("cannot create a cache segment in " + folder + ": " + std::strerror(errno));
    offset_ = kBlocksOffset;
  }
  ~SegmentWriter() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }
  size_t entries() const { return index_.size(); }

  void add(IndexEntry e, const std::vector<uint16_t>& pixels) {
    if (!pixels.empty()) {
      e.block = blocks_++;
      e.crc = util::crc32_of(pixels.data(), pixels.size() * 2);
      write_at(offset_, pixels.data(), pixels.size() * 2);
      offset_ += pixels.size() * 2;
    }
    index_.push_back(std::move(e));
  }

  // Returns the final path of the segment.
  std::string finish() {
    json j = json::array();
    for (const auto& e : index_) j.push_back(to_json(e));
    const std::string index = j.dump();
    SegmentHeader h{};
    std::memcpy(h.magic, kMagic, 8);
    h.version = kVersion;
    h.image_size = static_cast<uint32_t>(options_.image_size);
    h.keep_aspect = options_.keep_aspect ? 1 : 0;
    h.count = static_cast<uint32_t>(blocks_);
    h.index_offset = offset_;
    h.index_bytes = index.size();
    h.index_crc = util::crc32_of(index.data(), index.size());
    h.header_crc = header_crc(h);
    write_at(offset_, index.data(), index.size());
    write_at(0, &h, sizeof(h));
    if (::fsync(fd_) != 0) throw std::runtime_error("cannot sync " + tmp_);
    ::close(fd_);
    fd_ = -1;
    std::random_device rd;
    const std::string final_path = folder_ + "/" + std::to_string(std::time(nullptr)) + "-" +
                                   std::to_string(rd()) + ".wsc";
    if (::rename(tmp_.c_str(), final_path.c_str()) != 0) {
      throw std::runtime_error("cannot rename cache segment to " + final_path);
    }
    return final_path;
  }

 private:
  void write_at(uint64_t off, const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("cannot write cache segment " + tmp_ + ": " + std::strerror(errno));
      }
      p += w;
      off += static_cast<uint64_t>(w);
      n -= static_cast<size_t>(w);
    }
  }

  std::string folder_, tmp_;
  CacheOptions options_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  int64_t blocks_ = 0;
  std::vector<IndexEntry> index_;
};

}  // namespace

struct ImageCache::Mapping {
  void* base = MAP_FAILED;
  size_t bytes = 0;
  std::vector<IndexEntry> index;
  ~Mapping() {
    if (base != MAP_FAILED) ::munmap(base, bytes);
  }
};

namespace {

// Maps and checks a segment: nullptr (and the file removed) when its header or index is damaged.
// Entries whose pixel block fails its CRC lose their pixels and are counted in `damaged_entries`.
std::unique_ptr<ImageCache::Mapping> load_segment(const std::string& path, const CacheOptions& o, bool verify,
                                                  std::atomic<size_t>* damaged_entries) {
  auto m = std::make_unique<ImageCache::Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return nullptr;
  struct stat st {};
  ::fstat(fd, &st);
  m->bytes = static_cast<size_t>(st.st_size);
  if (m->bytes >= sizeof(SegmentHeader)) m->base = ::mmap(nullptr, m->bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  auto damaged = [&]() -> std::unique_ptr<ImageCache::Mapping> {
    std::error_code ec;
    fs::remove(path, ec);
    return nullptr;
  };
  if (m->base == MAP_FAILED) return damaged();
  SegmentHeader h;
  std::memcpy(&h, m->base, sizeof(h));
  if (std::memcmp(h.magic, kMagic, 8) != 0 || h.version != kVersion || h.header_crc != header_crc(h)) {
    return damaged();
  }
  if (h.image_size != static_cast<uint32_t>(o.image_size) || h.keep_aspect != (o.keep_aspect ? 1u : 0u)) {
    return damaged();  // a segment of other parameters in this folder is foreign
  }
  const size_t bb = block_bytes(o.image_size);
  if (h.index_offset + h.index_bytes > m->bytes || kBlocksOffset + h.count * bb > h.index_offset) {
    return damaged();
  }
  const char* index_text = static_cast<const char*>(m->base) + h.index_offset;
  if (util::crc32_of(index_text, h.index_bytes) != h.index_crc) return damaged();
  try {
    for (const auto& j : json::parse(index_text, index_text + h.index_bytes)) m->index.push_back(from_json(j));
  } catch (const std::exception&) {
    return damaged();
  }
  for (auto& e : m->index) {
    if (e.block < 0) continue;
    if (e.block >= static_cast<int64_t>(h.count)) {
      e.block = -1;
      ++*damaged_entries;
      continue;
    }
    const auto* p = reinterpret_cast<const uint16_t*>(static_cast<const char*>(m->base) + kBlocksOffset +
                                                      e.block * bb);
    if (verify && util::crc32_of(p, bb) != e.crc) {
      ++*damaged_entries;
      e.block = -1;
      e.sha.clear();  // never matched again
      continue;
    }
    e.pixels = p;
  }
  return m;
}

using Lookup = std::unordered_map<std::string, const IndexEntry*>;

void adopt(ImageCache::Entry& to, const IndexEntry& e) {
  to = {e.pixels, e.error, e.width, e.height};
}

// Each thread takes its items from a cursor that `f` shares, so the threads finish together.
void run_in_threads(int threads, const std::function<void()>& f) {
  std::vector<std::thread> pool;
  for (int t = 0; t < thread_count(threads); ++t) pool.emplace_back(f);
  for (auto& th : pool) th.join();
}

// One folder per parameter set: its segments never hold pixels of another size or fit, and a format
// version change starts a new folder instead of reading old segments wrongly.
std::string parameter_folder(const CacheOptions& o) {
  const std::string key = "s" + std::to_string(o.image_size) +
                          (o.keep_aspect ? "-letterbox" : "-stretch") + "-v" + std::to_string(kVersion);
  return (fs::path(o.dir) / key).string();
}

struct KnownImages {
  Lookup by_path, by_sha;
};

// Stage 1: maps the folder's segments and verifies them in parallel (the CRC-32 of every block is
// most of the work). Sorted: names start with the creation time (in seconds), so a path decoded
// again after a change resolves to its newer entry.
KnownImages load_segments(const std::string& folder, const CacheOptions& o,
                          std::vector<std::unique_ptr<ImageCache::Mapping>>& mappings,
                          CacheStats& stats) {
  std::vector<std::string> segment_files;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() == ".wsc") segment_files.push_back(e.path().string());
  }
  std::sort(segment_files.begin(), segment_files.end());
  std::vector<std::unique_ptr<ImageCache::Mapping>> loaded(segment_files.size());
  std::atomic<size_t> damaged_entries{0}, next{0};
  run_in_threads(o.threads, [&]() {
    for (size_t i; (i = next++) < segment_files.size();) {
      loaded[i] = load_segment(segment_files[i], o, true, &damaged_entries);
    }
  });
  KnownImages known;
  for (auto& m : loaded) {
    if (!m) {
      ++stats.damaged_segments;
      continue;
    }
    for (const auto& e : m->index) {
      // An entry whose pixels failed their checksum (and has no error) is to be decoded again.
      if (!e.error.empty() || e.pixels) {
        known.by_path[e.path] = &e;
        if (!e.sha.empty()) known.by_sha[e.sha] = &e;
      }
    }
    mappings.push_back(std::move(m));
  }
  stats.damaged_entries = damaged_entries;
  return known;
}

// Stage 2: an unchanged file (same path, size and mtime) is taken without reading it; returns the
// positions in `paths` of the others.
std::vector<size_t> reuse_unchanged(const std::vector<std::string>& paths, const Lookup& by_path,
                                    std::vector<ImageCache::Entry>& entries, CacheStats& stats) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto it = by_path.find(paths[i]);
    if (it != by_path.end()) {
      const FileStamp now = stamp_of(paths[i]);
      if (now.size == it->second->stamp.size && now.mtime_ns == it->second->stamp.mtime_ns) {
        adopt(entries[i], *it->second);
        ++stats.reused;
        continue;
      }
    }
    todo.push_back(i);
  }
  return todo;
}

// Stage 3: hashes the rest in parallel and decodes what no segment holds (same content under
// another name or after a change is found by hash). New images go to a segment that is closed every
// segment_images images, so that a crash loses at most that many. An image that cannot be read is
// an entry with its reason; a cache write error stops every thread and is rethrown by run().
class Decoder {
 public:
  Decoder(const std::vector<std::string>& paths, const std::vector<size_t>& todo,
          const CacheOptions& o, const std::string& folder, const Lookup& by_sha,
          const ProgressFn& progress, std::vector<ImageCache::Entry>& entries, CacheStats& stats,
          std::vector<std::unique_ptr<ImageCache::Mapping>>& mappings)
      : paths_(paths),
        todo_(todo),
        o_(o),
        folder_(folder),
        by_sha_(by_sha),
        progress_(progress),
        entries_(entries),
        stats_(stats),
        mappings_(mappings) {}

  void run() {
    run_in_threads(o_.threads, [this]() { work(); });
    if (failure_) std::rethrow_exception(failure_);
    close_segment();
  }

 private:
  void work() {
    try {
      for (size_t k; (k = cursor_++) < todo_.size();) {
        const size_t i = todo_[k];
        IndexEntry e;
        e.path = paths_[i];
        e.stamp = stamp_of(paths_[i]);
        std::vector<uint16_t> pixels;
        const bool reused = read(i, e, pixels);
        record(i, e, pixels, reused);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failure_) failure_ = std::current_exception();
      cursor_ = todo_.size();
    }
  }

  // Hashes paths_[i] and, unless a segment holds its content, decodes it into `e` and `pixels`; an
  // image error becomes e.error. Returns whether the content was found by hash.
  bool read(size_t i, IndexEntry& e, std::vector<uint16_t>& pixels) {
    const std::string& path = paths_[i];
    bool reused = false;
    try {
      const std::vector<uint8_t> bytes = io::read_file_bytes(path);
      e.sha = util::sha256_hex(bytes.data(), bytes.size());
      {
        std::lock_guard<std::mutex> lock(mu_);
        const auto it = by_sha_.find(e.sha);
        if (it != by_sha_.end()) {
          adopt(entries_[i], *it->second);
          reused = true;
        }
      }
      if (!reused) {
        io::Image img = io::decode_image(bytes.data(), bytes.size(), path);
        e.width = img.info.width;
        e.height = img.info.height;
        pixels = render_u16(img, o_.image_size, o_.keep_aspect);
      }
    } catch (const io::ImageError& err) {
      e.error = std::string(io::error_kind_name(err.kind())) + ": " + err.reason();
    } catch (const std::exception& err) {
      e.error = std::string("error: ") + err.what();
    }
    return reused;
  }

  // Counts the image and, when decoded (or failed), adds it to the open segment.
  void record(size_t i, const IndexEntry& e, const std::vector<uint16_t>& pixels, bool reused) {
    std::lock_guard<std::mutex> lock(mu_);
    if (reused) {
      ++stats_.reused;
    } else {
      if (!e.error.empty() && e.stamp.size < 0) {
        entries_[i].error = e.error;  // unreadable path: nothing to key a cache entry on
      } else {
        if (!writer_) writer_ = std::make_unique<SegmentWriter>(folder_, o_);
        pending_.emplace_back(i, writer_->entries());
        writer_->add(e, pixels);
        if (static_cast<int>(writer_->entries()) >= o_.segment_images) close_segment();
      }
      ++(e.error.empty() ? stats_.decoded : stats_.failed);
    }
    if (progress_) progress_(++done_, todo_.size());
  }

  // With mu_ held (or the threads joined). The entries point into the segment as mapped again, not
  // into memory of the writer, like those of every other segment.
  void close_segment() {
    if (!writer_ || writer_->entries() == 0) return;
    const std::string path = writer_->finish();
    writer_.reset();
    std::atomic<size_t> unused{0};
    auto m = load_segment(path, o_, false, &unused);
    if (!m) throw std::runtime_error("cache segment " + path + " unreadable right after writing");
    for (auto [entry, pos] : pending_) adopt(entries_[entry], m->index[pos]);
    pending_.clear();
    mappings_.push_back(std::move(m));
  }

  const std::vector<std::string>& paths_;
  const std::vector<size_t>& todo_;
  const CacheOptions& o_;
  const std::string& folder_;
  const Lookup& by_sha_;
  const ProgressFn& progress_;
  std::vector<ImageCache::Entry>& entries_;
  CacheStats& stats_;
  std::vector<std::unique_ptr<ImageCache::Mapping>>& mappings_;

  std::mutex mu_;  // guards everything below but the counters, and entries_, stats_ and mappings_
  std::unique_ptr<SegmentWriter> writer_;
  std::vector<std::pair<size_t, size_t>> pending_;  // (entry, position in the writer's index)
  std::atomic<size_t> cursor_{0}, done_{0};
  std::exception_ptr failure_;  // a cache write error stops the build; image errors never do
};

}  // namespace

ImageCache::~ImageCache() = default;

std::unique_ptr<ImageCache> ImageCache::open(const std::vector<std::string>& paths,
                                             const CacheOptions& o, const ProgressFn& progress) {
  if (o.image_size < 8 || o.image_size > 4096) {
    throw std::runtime_error("image size " + std::to_string(o.image_size) + " outside 8..4096");
  }
  std::unique_ptr<ImageCache> cache(new ImageCache());
  cache->options_ = o;
  cache->folder_ = parameter_folder(o);
  fs::create_directories(cache->folder_);
  const KnownImages known = load_segments(cache->folder_, o, cache->mappings_, cache->stats_);
  cache->entries_.resize(paths.size());
  const std::vector<size_t> todo =
      reuse_unchanged(paths, known.by_path, cache->entries_, cache->stats_);
  Decoder(paths, todo, o, cache->folder_, known.by_sha, progress, cache->entries_, cache->stats_,
          cache->mappings_)
      .run();
  return cache;
}

}  // namespace wristssl::data
