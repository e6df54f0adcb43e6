#include "wristssl/data/cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "test_paths.h"
#include "wristssl/io/read_image.h"
#include "wristssl/io/resize.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;

namespace wristssl::data {
namespace {

using testing::repo_path;

std::vector<std::string> sample_paths(const std::string& dir) {
  // Copies so the test can touch them.
  std::vector<std::string> out;
  for (const char* rel : {"samples/fracatlas/images/Fractured/IMG0000319.jpg",
                          "samples/grazpedwri-dx/images/2425_1070629475_01_WRI-L2_F005.png",
                          "samples/dicom/CR-MONO1-10-chest.dcm",
                          "samples/fracatlas/images/Non_fractured/IMG0004028.jpg"}) {
    const std::string dst = dir + "/" + fs::path(rel).filename().string();
    fs::copy_file(repo_path(rel), dst, fs::copy_options::overwrite_existing);
    out.push_back(dst);
  }
  return out;
}

TEST(Cache, DecodesOnceStoresResizedPixelsAndKeepsErrors) {
  const std::string dir = testing::temp_dir("cache");
  const auto paths = sample_paths(dir);
  CacheOptions o;
  o.dir = dir + "/cache";
  o.image_size = 64;
  auto c = ImageCache::open(paths, o);
  EXPECT_EQ(c->stats().decoded, 3u);
  EXPECT_EQ(c->stats().failed, 1u);
  ASSERT_TRUE(c->ok(0));
  EXPECT_FALSE(c->ok(3));
  EXPECT_EQ(c->error(3).rfind("truncated", 0), 0u) << c->error(3);
  // Pixels equal the independent path: read_image + resize_image, quantised to 16 bits.
  const io::Image img = io::read_image(paths[1]);
  const auto small = io::resize_image(img.pixels, img.info.width, img.info.height, 64, 64);
  for (size_t i = 0; i < small.size(); ++i) {
    ASSERT_NEAR(c->pixels(1)[i] / 65535.0, small[i], 0.51 / 65535) << i;
  }
  EXPECT_EQ(c->original_width(1), img.info.width);

  auto again = ImageCache::open(paths, o);
  EXPECT_EQ(again->stats().reused, 4u);
  EXPECT_EQ(again->stats().decoded, 0u);
  EXPECT_EQ(std::memcmp(again->pixels(2), c->pixels(2), 64 * 64 * 2), 0);
  EXPECT_EQ(again->error(3), c->error(3));
}

TEST(Cache, SameContentUnderAnotherNameIsFoundByHash) {
  const std::string dir = testing::temp_dir("cache_hash");
  const auto paths = sample_paths(dir);
  CacheOptions o;
  o.dir = dir + "/cache";
  o.image_size = 32;
  ImageCache::open(paths, o);
  fs::copy_file(paths[0], dir + "/renamed.jpg");
  auto c = ImageCache::open({dir + "/renamed.jpg"}, o);
  EXPECT_EQ(c->stats().reused, 1u);
  EXPECT_EQ(c->stats().decoded, 0u);
}

TEST(Cache, ChangedFileIsDecodedAgain) {
  const std::string dir = testing::temp_dir("cache_change");
  auto paths = sample_paths(dir);
  CacheOptions o;
  o.dir = dir + "/cache";
  o.image_size = 32;
  ImageCache::open(paths, o);
  fs::copy_file(repo_path("tests/fixtures/grey8.png"), paths[0], fs::copy_options::overwrite_existing);
  auto c = ImageCache::open(paths, o);
  EXPECT_EQ(c->stats().decoded, 1u);
  EXPECT_EQ(c->original_width(0), 64);
}

TEST(Cache, DamagedSegmentsAndBlocksAreDetectedAndRebuilt) {
  const std::string dir = testing::temp_dir("cache_damage");
  const auto paths = sample_paths(dir);
  CacheOptions o;
  o.dir = dir + "/cache";
  o.image_size = 32;
  auto first = ImageCache::open(paths, o);
  std::vector<uint16_t> expected(first->pixels(0), first->pixels(0) + 32 * 32);
  first.reset();
  std::string seg;
  for (const auto& e : fs::recursive_directory_iterator(o.dir)) {
    if (e.path().extension() == ".wsc") seg = e.path().string();
  }
  ASSERT_FALSE(seg.empty());
  // Flip one pixel byte inside the first block (offset 4096): that entry must be decoded again.
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    f.put('\x7f');
  }
  auto c = ImageCache::open(paths, o);
  EXPECT_EQ(c->stats().damaged_entries, 1u);
  EXPECT_EQ(c->stats().decoded, 1u);
  EXPECT_EQ(std::memcmp(c->pixels(0), expected.data(), expected.size() * 2), 0);
  c.reset();
  // Garbage in a header: the whole segment is dropped and everything decoded again.
  for (const auto& e : fs::recursive_directory_iterator(o.dir)) {
    if (e.path().extension() == ".wsc") {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(12);
      f.put('\x55');
    }
  }
  auto d = ImageCache::open(paths, o);
  EXPECT_GE(d->stats().damaged_segments, 1u);
  EXPECT_EQ(d->stats().reused, 0u);
  EXPECT_EQ(std::memcmp(d->pixels(0), expected.data(), expected.size() * 2), 0);
  // A truncated segment file is dropped too.
  d.reset();
  for (const auto& e : fs::recursive_directory_iterator(o.dir)) {
    if (e.path().extension() == ".wsc") fs::resize_file(e.path(), 2000);
  }
  auto t = ImageCache::open(paths, o);
  EXPECT_GE(t->stats().damaged_segments, 1u);
  EXPECT_TRUE(t->ok(0));
}

TEST(Cache, LetterboxKeepsAspect) {
  const std::string dir = testing::temp_dir("cache_box");
  const auto paths = sample_paths(dir);
  CacheOptions o;
  o.dir = dir + "/cache";
  o.image_size = 64;
  o.keep_aspect = true;
  auto c = ImageCache::open({paths[1]}, o);  // 460 wide x 698 high: padded left and right
  EXPECT_EQ(c->pixels(0)[32 * 64 + 0], 0);
  EXPECT_EQ(c->pixels(0)[32 * 64 + 63], 0);
}

}  // namespace
}  // namespace wristssl::data
