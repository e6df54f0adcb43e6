#include "wristssl/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "wristssl/io/resize.h"

namespace fs = std::filesystem;

namespace wristssl::data {
namespace {

constexpr const char* kFashionClasses[10] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                             "sandal", "shirt",   "sneaker",  "bag",   "boot"};

std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) out.insert(out.end(), buf.begin(), buf.begin() + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) throw std::runtime_error(path + ": " + msg);
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t off) {
  return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | b[off + 3];
}

std::string find_file(const std::string& folder, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    const fs::path p = fs::path(folder) / (stem + ext);
    if (fs::exists(p)) return p.string();
  }
  return "";
}

}  // namespace

MemoryPixels::MemoryPixels(int image_size, std::vector<std::vector<uint16_t>> images)
    : image_size_(image_size), images_(std::move(images)) {}

IdxSet read_idx(const std::string& images_path, const std::string& labels_path, size_t limit) {
  const auto img = read_gz(images_path);
  const auto lab = read_gz(labels_path);
  if (img.size() < 16 || be32(img, 0) != 2051) throw std::runtime_error(images_path + ": not an IDX images file (magic 2051)");
  if (lab.size() < 8 || be32(lab, 0) != 2049) throw std::runtime_error(labels_path + ": not an IDX labels file (magic 2049)");
  const size_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096) throw std::runtime_error(images_path + ": bad image size");
  if (img.size() < 16 + n * rows * cols) throw std::runtime_error(images_path + ": truncated (" + std::to_string(n) + " images declared)");
  if (be32(lab, 4) != n || lab.size() < 8 + n) throw std::runtime_error(labels_path + ": label count does not match " + images_path);
  IdxSet set;
  set.rows = static_cast<int>(rows);
  set.cols = static_cast<int>(cols);
  const size_t take = limit ? std::min(limit, n) : n;
  for (size_t i = 0; i < take; ++i) {
    const auto* p = img.data() + 16 + i * rows * cols;
    set.images.emplace_back(p, p + rows * cols);
    set.labels.push_back(lab[8 + i]);
  }
  return set;
}

bool is_idx_folder(const std::string& folder) {
  return fs::is_directory(folder) && !find_file(folder, "train-images-idx3-ubyte").empty();
}

Dataset load_idx_dataset(const std::string& folder, int image_size, size_t limit, std::unique_ptr<MemoryPixels>* pixels) {
  Dataset ds;
  ds.layout = Layout::kManifest;
  ds.source = folder;
  ds.class_names.assign(std::begin(kFashionClasses), std::end(kFashionClasses));
  std::vector<std::vector<uint16_t>> images;
  for (const char* split : {"train", "t10k"}) {
    const std::string im = find_file(folder, std::string(split) + "-images-idx3-ubyte");
    const std::string lb = find_file(folder, std::string(split) + "-labels-idx1-ubyte");
    if (im.empty() || lb.empty()) {
      if (std::string(split) == "train") throw std::runtime_error(folder + ": no train-images-idx3-ubyte[.gz]");
      continue;
    }
    const IdxSet set = read_idx(im, lb, limit);
    for (size_t i = 0; i < set.images.size(); ++i) {
      const std::string id = folder + "#" + split + "/" + std::to_string(i);
      ds.records.push_back({id, set.labels[i], id});
      std::vector<float> f(set.images[i].begin(), set.images[i].end());
      for (auto& v : f) v /= 255.0f;
      const auto r = io::resize_image(f, set.cols, set.rows, image_size, image_size);
      std::vector<uint16_t> u(r.size());
      for (size_t k = 0; k < r.size(); ++k) u[k] = static_cast<uint16_t>(std::lround(std::min(1.0f, std::max(0.0f, r[k])) * 65535.0f));
      images.push_back(std::move(u));
    }
  }
  *pixels = std::make_unique<MemoryPixels>(image_size, std::move(images));
  return ds;
}

}  // namespace wristssl::data
