#include "wristssl/data/source.h"

#include <cmath>
#include <cstdio>

#include "wristssl/data/idx.h"
#include "wristssl/util/progress.h"

namespace wristssl::data {

LoadedData load_pixels(const DatasetOptions& options, const CacheOptions& cache, size_t limit) {
  LoadedData out;
  if (is_idx_folder(options.data)) {
    std::unique_ptr<MemoryPixels> mem;
    out.dataset = load_idx_dataset(options.data, cache.image_size, limit, &mem);
    out.pixels = std::move(mem);
    return out;
  }
  out.dataset = load_dataset(options);
  std::vector<std::string> paths;
  for (const auto& r : out.dataset.records) paths.push_back(r.path);
  util::Progress bar("decode", paths.size());
  auto c = ImageCache::open(paths, cache, [&](size_t done, size_t) { bar.update(done); });
  const CacheStats& st = c->stats();
  bar.finish("(" + std::to_string(st.reused) + " from cache, " + std::to_string(st.decoded) + " decoded, " +
             std::to_string(st.failed) + " unreadable)");
  if (st.damaged_segments || st.damaged_entries) {
    std::fprintf(stderr, "cache: %zu damaged segment(s) and %zu damaged image(s) found in %s and rebuilt\n",
                 st.damaged_segments, st.damaged_entries, c->folder().c_str());
  }
  for (size_t i = 0; i < c->size(); ++i) {
    if (!c->ok(i)) {
      ++out.unreadable;
      std::fprintf(stderr, "skipping unreadable %s: %s\n", paths[i].c_str(), c->error(i).c_str());
    }
  }
  out.pixels = std::move(c);
  return out;
}

std::pair<float, float> pixel_stats(const PixelSource& pixels, size_t max_images) {
  std::vector<size_t> ok;
  for (size_t i = 0; i < pixels.size(); ++i) {
    if (pixels.ok(i)) ok.push_back(i);
  }
  if (ok.empty()) return {0.5f, 0.25f};
  const size_t take = std::min(max_images, ok.size());
  const size_t n = static_cast<size_t>(pixels.image_size()) * pixels.image_size();
  double sum = 0, sum2 = 0, count = 0;
  for (size_t k = 0; k < take; ++k) {
    const uint16_t* p = pixels.pixels(ok[k * ok.size() / take]);
    for (size_t i = 0; i < n; ++i) {
      const double v = p[i] / 65535.0;
      sum += v;
      sum2 += v * v;
    }
    count += static_cast<double>(n);
  }
  const double mean = sum / count;
  const double var = std::max(1e-6, sum2 / count - mean * mean);
  return {static_cast<float>(mean), static_cast<float>(std::sqrt(var))};
}

}  // namespace wristssl::data
