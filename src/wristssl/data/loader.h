#pragma once
// A multi-threaded batch loader: worker threads take whole batches (read from the pixel source,
// augment, normalise, write straight into tensor memory) and hand them over in order through a
// bounded prefetch window, so the model never waits and memory stays bounded. Deterministic: batch
// contents depend only on (seed, epoch, batch), not on thread timing.

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "wristssl/data/augment.h"
#include "wristssl/data/pixel_source.h"

namespace wristssl::data {

struct LoaderOptions {
  int batch_size = 32;
  int views = 2;          // 2: SimCLR positive pairs; 1: classifier
  bool shuffle = true;
  bool drop_last = true;  // contrastive batches keep a fixed size
  int workers = 2;
  int prefetch = 4;       // batches ready ahead of the model
  uint64_t seed = 0;
  int rank = 0;           // distributed: this process's share of each global batch of batch_size * world
  int world = 1;
  AugmentOptions augment;
  float mean = 0.5f;      // normalisation: (x - mean) / std
  float std = 0.25f;
  // Guided crops (see CropGuide): the boxes of the items that have them (by source index; the
  // trainer puts only training items here), and for the others the brightest of this many random
  // positions (0: plain random crops). masks: each view's box mask in Batch::masks.
  std::shared_ptr<const std::map<int, std::vector<Box>>> boxes;
  int bone_candidates = 0;
  bool masks = false;
};

struct Batch {
  int64_t index = 0;                 // batch number in the epoch
  std::vector<torch::Tensor> views;  // each [B, 1, out, out] float32
  torch::Tensor labels;              // [B] int64 (-1 unlabelled)
  std::vector<int> items;            // dataset indices
  torch::Tensor masks;               // [B, 1, out, out] 1 inside a box (views == 1 and masks on)
};

class BatchLoader {
 public:
  /// `items` are indices into `source` (unreadable ones are skipped); `labels` per source index.
  BatchLoader(const PixelSource& source, std::vector<int> items, std::vector<int> labels, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// Batches in one epoch.
  int64_t batches_per_epoch() const;
  /// Starts `epoch` at batch `first` (to resume mid-epoch); stops any epoch in progress.
  void start_epoch(int64_t epoch, int64_t first = 0);
  /// The next batch of the epoch, or nullopt at its end.
  std::optional<Batch> next();
  /// Items actually used (readable ones).
  const std::vector<int>& items() const { return items_; }

 private:
  void worker_loop();
  Batch make_batch(int64_t epoch, int64_t b, const std::vector<int>& items) const;
  void stop_workers();

  const PixelSource& source_;
  std::vector<int> items_;
  std::vector<int> labels_;
  LoaderOptions options_;

  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::vector<std::thread> threads_;
  bool quit_ = false;
  int64_t epoch_ = -1, generation_ = 0;
  std::vector<int> order_;
  int64_t next_claim_ = 0, next_out_ = 0, end_ = 0;
  std::map<int64_t, Batch> ready_;
};

}  // namespace wristssl::data
