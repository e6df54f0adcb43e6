#include "wristssl/data/preprocess.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_paths.h"
#include "wristssl/data/cache.h"
#include "wristssl/data/dataset.h"
#include "wristssl/data/loader.h"
#include "wristssl/io/read_image.h"

namespace wristssl::data {
namespace {

// A single file scored by predict must see exactly the input that training and evaluation see
// through the cache and the loader: same resize, same 16-bit rounding, same resampling, same
// normalisation.
TEST(Preprocess, SingleFileInputEqualsTheCachedLoaderInput) {
  const std::vector<std::string> files =
      list_image_files(testing::repo_path("samples/grazpedwri-dx/images"));
  ASSERT_GE(files.size(), 2u);
  const std::string cache_dir = testing::temp_dir("preprocess-cache");
  for (const auto& [image_size, input_size] :
       std::vector<std::pair<int, int>>{{64, 48}, {40, 56}}) {
    CacheOptions co = cache_options(cache_dir, image_size, 1);
    auto cache = ImageCache::open({files[0], files[1]}, co);
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.views = 1;
    lo.shuffle = false;
    lo.drop_last = false;
    lo.workers = 1;
    lo.augment = AugmentOptions::none(input_size);
    lo.mean = 0.4f;
    lo.std = 0.3f;
    BatchLoader loader(*cache, {0, 1}, {}, lo);
    loader.start_epoch(0);
    const auto batch = loader.next();
    ASSERT_TRUE(batch);
    Preprocessing p{image_size, input_size, false, 0.4f, 0.3f};
    for (int k = 0; k < 2; ++k) {
      const std::vector<float> mine = network_input(io::read_image(files[k]), p);
      ASSERT_EQ(mine.size(), static_cast<size_t>(input_size * input_size));
      const float* theirs = batch->views[0].data_ptr<float>() + k * input_size * input_size;
      for (size_t i = 0; i < mine.size(); ++i)
        ASSERT_EQ(mine[i], theirs[i]) << "pixel " << i << " of " << files[k];
    }
  }
}

TEST(Preprocess, RenderU16RefusesAnInconsistentImage) {
  io::Image img;
  img.info.width = 4;
  img.info.height = 4;
  img.pixels.assign(15, 0.5f);
  EXPECT_THROW(render_u16(img, 8, false), std::invalid_argument);
  img.pixels.assign(16, 0.5f);
  const std::vector<uint16_t> px = render_u16(img, 8, false);
  ASSERT_EQ(px.size(), 64u);
  EXPECT_EQ(px[0], 32768);  // 0.5 * 65535 rounded
}

}  // namespace
}  // namespace wristssl::data
