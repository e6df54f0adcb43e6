#include "wristssl/data/loader.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include "wristssl/data/preprocess.h"

namespace wristssl::data {

BatchLoader::BatchLoader(const PixelSource& source, std::vector<int> items, std::vector<int> labels,
                         LoaderOptions options)
    : source_(source), labels_(std::move(labels)), options_(std::move(options)) {
  for (int i : items) {
    if (i < 0 || static_cast<size_t>(i) >= source_.size()) {
      throw std::out_of_range("loader item " + std::to_string(i) + " outside the source of " +
                              std::to_string(source_.size()));
    }
    if (source_.ok(i)) items_.push_back(i);
  }
  if (options_.batch_size < 1) throw std::invalid_argument("batch size must be >= 1");
  if (options_.views < 1) throw std::invalid_argument("views must be >= 1");
  if (items_.empty()) throw std::runtime_error("no readable images to load");
  if (options_.world < 1 || options_.rank < 0 || options_.rank >= options_.world)
    throw std::invalid_argument("loader rank " + std::to_string(options_.rank) + " outside world " +
                                std::to_string(options_.world));
  if (options_.world > 1 && !options_.drop_last)
    throw std::invalid_argument("a distributed loader drops the last partial batch (every rank needs a share)");
  const int64_t global = static_cast<int64_t>(options_.batch_size) * options_.world;
  if (options_.drop_last && static_cast<int64_t>(items_.size()) < global) {
    throw std::runtime_error("only " + std::to_string(items_.size()) + " readable images for a batch of " +
                             std::to_string(global) +
                             (options_.world > 1 ? " (" + std::to_string(options_.batch_size) + " per rank)" : ""));
  }
  const int workers = std::max(1, options_.workers);
  for (int t = 0; t < workers; ++t) threads_.emplace_back([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() { stop_workers(); }

void BatchLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(items_.size());
  const int64_t global = static_cast<int64_t>(options_.batch_size) * options_.world;
  return options_.drop_last ? n / global : (n + global - 1) / global;
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first) {
  std::vector<int> order = items_;
  if (options_.shuffle) {
    std::mt19937_64 rng(mix_seed(options_.seed, static_cast<uint64_t>(epoch), 0x0DDE5ULL));
    // Fisher-Yates with our own index draw: identical on every standard library.
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  epoch_ = epoch;
  order_ = std::move(order);
  ready_.clear();
  next_claim_ = next_out_ = std::clamp<int64_t>(first, 0, batches_per_epoch());
  end_ = batches_per_epoch();
  cv_work_.notify_all();
}

Batch BatchLoader::make_batch(int64_t epoch, int64_t b, const std::vector<int>& items) const {
  const int64_t n = static_cast<int64_t>(items.size());
  const int out = options_.augment.out_size;
  Batch batch;
  batch.index = b;
  batch.labels = torch::empty({n}, torch::kLong);
  auto* lab = batch.labels.data_ptr<int64_t>();
  for (int v = 0; v < options_.views; ++v) batch.views.push_back(torch::empty({n, 1, out, out}, torch::kFloat));
  if (options_.masks && options_.views == 1)
    batch.masks = torch::zeros({n, 1, out, out}, torch::kFloat);
  for (int64_t k = 0; k < n; ++k) {
    const int item = items[k];
    batch.items.push_back(item);
    lab[k] = static_cast<size_t>(item) < labels_.size() ? labels_[item] : -1;
    CropGuide guide;
    guide.bone_candidates = options_.bone_candidates;
    if (options_.boxes) {
      const auto it = options_.boxes->find(item);
      if (it != options_.boxes->end()) guide.boxes = &it->second;
    }
    if (batch.masks.defined()) guide.mask = batch.masks.data_ptr<float>() + k * out * out;
    for (int v = 0; v < options_.views; ++v) {
      float* dst = batch.views[v].data_ptr<float>() + k * out * out;
      augment_view(
          source_.pixels(item), source_.image_size(), dst, options_.augment,
          mix_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(item), v + 1),
          guide);
      normalize_in_place(dst, static_cast<int64_t>(out) * out, options_.mean, options_.std);
    }
  }
  return batch;
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_work_.wait(lock, [&] {
      return quit_ || (epoch_ >= 0 && next_claim_ < end_ && next_claim_ < next_out_ + options_.prefetch);
    });
    if (quit_) return;
    const int64_t b = next_claim_++, epoch = epoch_, generation = generation_;
    // Global batch b is order_[b * B * world, (b + 1) * B * world); this rank takes its own B of it, so that
    // the ranks together see exactly what one process with batch B * world would.
    const int64_t global = static_cast<int64_t>(options_.batch_size) * options_.world;
    const int64_t size = static_cast<int64_t>(order_.size());
    const int64_t begin = std::min<int64_t>(b * global + static_cast<int64_t>(options_.rank) * options_.batch_size, size);
    const int64_t end = std::min<int64_t>(begin + options_.batch_size, size);
    const std::vector<int> items(order_.begin() + begin, order_.begin() + end);
    lock.unlock();
    Batch batch = make_batch(epoch, b, items);
    lock.lock();
    if (generation == generation_) {
      ready_.emplace(b, std::move(batch));
      cv_ready_.notify_all();
    }
  }
}

std::optional<Batch> BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (epoch_ < 0) throw std::logic_error("BatchLoader::next before start_epoch");
  if (next_out_ >= end_) return std::nullopt;
  cv_ready_.wait(lock, [&] { return ready_.count(next_out_) > 0; });
  Batch batch = std::move(ready_.at(next_out_));
  ready_.erase(next_out_);
  ++next_out_;
  cv_work_.notify_all();
  return batch;
}

}  // namespace wristssl::data
