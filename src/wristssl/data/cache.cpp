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

}  // namespace

ImageCache::~ImageCache() = default;

std::unique_ptr<ImageCache> ImageCache::open(const std::vector<std::string>& paths, const CacheOptions& o,
                                             const ProgressFn& progress) {
  if (o.image_size < 8 || o.image_size > 4096) {
    throw std::runtime_error("image size " + std::to_string(o.image_size) + " outside 8..4096");
  }
  std::unique_ptr<ImageCache> cache(new ImageCache());
  cache->options_ = o;
  const std::string key = "s" + std::to_string(o.image_size) +
                          (o.keep_aspect ? "-letterbox" : "-stretch") + "-v" + std::to_string(kVersion);
  cache->folder_ = (fs::path(o.dir) / key).string();
  fs::create_directories(cache->folder_);

  // 1. Map and verify the existing segments (in parallel: CRC-32 of every block).
  std::vector<std::string> segment_files;
  for (const auto& e : fs::directory_iterator(cache->folder_)) {
    if (e.path().extension() == ".wsc") segment_files.push_back(e.path().string());
  }
  std::sort(segment_files.begin(), segment_files.end());
  std::vector<std::unique_ptr<Mapping>> loaded(segment_files.size());
  std::atomic<size_t> damaged_entries{0}, next{0};
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < thread_count(o.threads); ++t) {
      pool.emplace_back([&]() {
        for (size_t i; (i = next++) < segment_files.size();) {
          loaded[i] = load_segment(segment_files[i], o, true, &damaged_entries);
        }
      });
    }
    for (auto& th : pool) th.join();
  }
  std::unordered_map<std::string, const IndexEntry*> by_path, by_sha;
  for (auto& m : loaded) {
    if (!m) {
      ++cache->stats_.damaged_segments;
      continue;
    }
    for (const auto& e : m->index) {
      if (!e.error.empty() || e.pixels) {
        by_path[e.path] = &e;
        if (!e.sha.empty()) by_sha[e.sha] = &e;
      }
    }
    cache->mappings_.push_back(std::move(m));
  }
  cache->stats_.damaged_entries = damaged_entries;

  // 2. Resolve each path: same path, size and mtime; else same content; else decode.
  cache->entries_.resize(paths.size());
  auto adopt = [&](size_t i, const IndexEntry& e) {
    cache->entries_[i] = {e.pixels, e.error, e.width, e.height};
  };
  std::vector<size_t> todo;
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto it = by_path.find(paths[i]);
    if (it != by_path.end()) {
      const FileStamp now = stamp_of(paths[i]);
      if (now.size == it->second->stamp.size && now.mtime_ns == it->second->stamp.mtime_ns) {
        adopt(i, *it->second);
        ++cache->stats_.reused;
        continue;
      }
    }
    todo.push_back(i);
  }

  // 3. Hash and decode the rest in parallel; a segment is closed every segment_images images.
  std::mutex mu;
  std::unique_ptr<SegmentWriter> writer;
  std::vector<std::pair<size_t, size_t>> pending;  // (entry, position in the writer's index)
  std::atomic<size_t> cursor{0}, done{0};
  std::exception_ptr failure;  // a cache write error stops the build; image errors never do
  auto close_segment = [&]() {  // with mu held
    if (!writer || writer->entries() == 0) return;
    const std::string path = writer->finish();
    writer.reset();
    std::atomic<size_t> unused{0};
    auto m = load_segment(path, o, false, &unused);
    if (!m) throw std::runtime_error("cache segment " + path + " unreadable right after writing");
    for (auto [entry, pos] : pending) adopt(entry, m->index[pos]);
    pending.clear();
    cache->mappings_.push_back(std::move(m));
  };
  auto work = [&]() {
    try {
    for (size_t k; (k = cursor++) < todo.size();) {
      const size_t i = todo[k];
      const std::string& path = paths[i];
      IndexEntry e;
      e.path = path;
      e.stamp = stamp_of(path);
      std::vector<uint16_t> pixels;
      bool reused = false;
      try {
        const std::vector<uint8_t> bytes = io::read_file_bytes(path);
        e.sha = util::sha256_hex(bytes.data(), bytes.size());
        {
          std::lock_guard<std::mutex> lock(mu);
          const auto it = by_sha.find(e.sha);
          if (it != by_sha.end()) {
            adopt(i, *it->second);
            reused = true;
          }
        }
        if (!reused) {
          io::Image img = io::decode_image(bytes.data(), bytes.size(), path);
          e.width = img.info.width;
          e.height = img.info.height;
          pixels = render_u16(img, o.image_size, o.keep_aspect);
        }
      } catch (const io::ImageError& err) {
        e.error = std::string(io::error_kind_name(err.kind())) + ": " + err.reason();
      } catch (const std::exception& err) {
        e.error = std::string("error: ") + err.what();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (reused) {
          ++cache->stats_.reused;
        } else {
          if (!e.error.empty() && e.stamp.size < 0) {
            cache->entries_[i].error = e.error;  // unreadable path: nothing to key a cache entry on
          } else {
            if (!writer) writer = std::make_unique<SegmentWriter>(cache->folder_, o);
            pending.emplace_back(i, writer->entries());
            writer->add(e, pixels);
            if (static_cast<int>(writer->entries()) >= o.segment_images) close_segment();
          }
          ++(e.error.empty() ? cache->stats_.decoded : cache->stats_.failed);
        }
        if (progress) progress(++done, todo.size());
      }
    }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = std::current_exception();
      cursor = todo.size();
    }
  };
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < thread_count(o.threads); ++t) pool.emplace_back(work);
    for (auto& th : pool) th.join();
  }
  if (failure) std::rethrow_exception(failure);
  close_segment();
  return cache;
}

}  // namespace wristssl::data
