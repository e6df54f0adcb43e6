#pragma once
// The IDX format (MNIST, Fashion-MNIST): gzip or raw, images [N, rows, cols] uint8 and labels [N].

#include <memory>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/data/pixel_source.h"

namespace wristssl::data {

/// Images held in memory, resized to a square side once (bilinear / area) and stored as 16-bit.
class MemoryPixels : public PixelSource {
 public:
  MemoryPixels(int image_size, std::vector<std::vector<uint16_t>> images);
  size_t size() const override { return images_.size(); }
  int image_size() const override { return image_size_; }
  bool ok(size_t) const override { return true; }
  const std::string& error(size_t) const override { return empty_; }
  const uint16_t* pixels(size_t i) const override { return images_.at(i).data(); }

 private:
  int image_size_;
  std::vector<std::vector<uint16_t>> images_;
  std::string empty_;
};

/// One IDX split: images and labels.
struct IdxSet {
  int rows = 0, cols = 0;
  std::vector<std::vector<uint8_t>> images;
  std::vector<int> labels;
};

/// Reads an images file (magic 2051) and a labels file (magic 2049); .gz is inflated on the fly.
/// Throws std::runtime_error naming the file on a bad magic, size or truncation.
IdxSet read_idx(const std::string& images_path, const std::string& labels_path, size_t limit = 0);

/// True when `folder` holds Fashion-MNIST / MNIST files (train-images-idx3-ubyte[.gz], ...).
bool is_idx_folder(const std::string& folder);

/// A folder of IDX files as a labelled dataset: the train split, then t10k ("test"). Record paths are
/// "<folder>#train/123"; groups are the images themselves. `pixels` receives the images resized to
/// image_size. `limit` caps each split (0 = all).
Dataset load_idx_dataset(const std::string& folder, int image_size, size_t limit,
                         std::unique_ptr<MemoryPixels>* pixels);

}  // namespace wristssl::data
