#pragma once
// From a --data option to pixels ready for training: the dataset records, a pixel source (the
// preprocessing cache, or Fashion-MNIST in memory) and the normalisation statistics.

#include <memory>
#include <string>

#include "wristssl/data/cache.h"
#include "wristssl/data/dataset.h"
#include "wristssl/data/pixel_source.h"

namespace wristssl::data {

struct LoadedData {
  Dataset dataset;
  std::unique_ptr<PixelSource> pixels;  // pixels->size() == dataset.records.size()
  size_t unreadable = 0;
};

/// Loads the dataset and its pixels at `cache.image_size`: IDX folders (Fashion-MNIST) in memory, every
/// other layout through the preprocessing cache. `limit` > 0 keeps at most that many images per IDX
/// split. Progress goes to stderr; unreadable files are listed there and skipped, never fatal.
LoadedData load_pixels(const DatasetOptions& options, const CacheOptions& cache, size_t limit = 0);

/// Mean and standard deviation of pixel values in [0, 1] over up to `max_images` readable images
/// (evenly spaced through the source).
std::pair<float, float> pixel_stats(const PixelSource& pixels, size_t max_images = 256);

}  // namespace wristssl::data
