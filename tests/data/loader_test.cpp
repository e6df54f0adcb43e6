#include "wristssl/data/loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "wristssl/data/idx.h"

namespace wristssl::data {
namespace {

// 40 distinct 16x16 images; image 5 is unreadable.
class FakeSource : public PixelSource {
 public:
  FakeSource() {
    for (int i = 0; i < 40; ++i) images_.emplace_back(16 * 16, static_cast<uint16_t>(i * 1000));
  }
  size_t size() const override { return images_.size(); }
  int image_size() const override { return 16; }
  bool ok(size_t i) const override { return i != 5; }
  const std::string& error(size_t i) const override { return i == 5 ? bad_ : none_; }
  const uint16_t* pixels(size_t i) const override { return images_[i].data(); }

 private:
  std::vector<std::vector<uint16_t>> images_;
  std::string bad_ = "truncated: test", none_;
};

std::vector<int> all_items() {
  std::vector<int> v(40);
  for (int i = 0; i < 40; ++i) v[i] = i;
  return v;
}

std::vector<Batch> epoch_batches(BatchLoader& l, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  l.start_epoch(epoch, first);
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}

TEST(Loader, SkipsUnreadableDropsLastAndNormalises) {
  FakeSource src;
  LoaderOptions o;
  o.batch_size = 8;
  o.augment = AugmentOptions::none(16);
  o.mean = 0.5f;
  o.std = 0.25f;
  std::vector<int> labels(40);
  for (int i = 0; i < 40; ++i) labels[i] = i % 2;
  BatchLoader l(src, all_items(), labels, o);
  EXPECT_EQ(l.items().size(), 39u);
  EXPECT_EQ(l.batches_per_epoch(), 4);  // 39 / 8, last partial batch dropped
  const auto batches = epoch_batches(l, 0);
  ASSERT_EQ(batches.size(), 4u);
  std::set<int> seen;
  for (const auto& b : batches) {
    EXPECT_EQ(b.views.size(), 2u);
    EXPECT_EQ(b.views[0].sizes(), (std::vector<int64_t>{8, 1, 16, 16}));
    for (int64_t k = 0; k < 8; ++k) {
      const int item = b.items[k];
      EXPECT_NE(item, 5);
      seen.insert(item);
      EXPECT_EQ(b.labels[k].item<int64_t>(), item % 2);
      const float expected = (item * 1000 / 65535.0f - 0.5f) / 0.25f;
      EXPECT_NEAR(b.views[0][k][0][3][3].item<float>(), expected, 1e-5);
    }
  }
  EXPECT_EQ(seen.size(), 32u);
}

TEST(Loader, DeterministicWhateverTheWorkerCountAndResumable) {
  FakeSource src;
  LoaderOptions o;
  o.batch_size = 6;
  o.seed = 11;
  o.augment = AugmentOptions::xray(12);
  o.workers = 1;
  BatchLoader one(src, all_items(), {}, o);
  o.workers = 3;
  o.prefetch = 2;
  BatchLoader three(src, all_items(), {}, o);
  const auto a = epoch_batches(one, 2), b = epoch_batches(three, 2);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].items, b[i].items);
    EXPECT_TRUE(torch::equal(a[i].views[1], b[i].views[1]));
  }
  const auto resumed = epoch_batches(three, 2, 3);
  ASSERT_EQ(resumed.size(), a.size() - 3);
  EXPECT_EQ(resumed[0].index, 3);
  EXPECT_TRUE(torch::equal(resumed[0].views[0], a[3].views[0]));
  EXPECT_NE(epoch_batches(one, 3)[0].items, a[0].items) << "a new epoch reshuffles";
  // Restarting an epoch half way through leaves no stale batches behind.
  three.start_epoch(4);
  three.next();
  const auto again = epoch_batches(three, 2);
  EXPECT_EQ(again[0].items, a[0].items);
}

TEST(Loader, RefusesTooFewImagesForABatch) {
  FakeSource src;
  LoaderOptions o;
  o.batch_size = 64;
  EXPECT_THROW(BatchLoader(src, all_items(), {}, o), std::runtime_error);
  o.drop_last = false;
  BatchLoader l(src, all_items(), {}, o);
  EXPECT_EQ(l.batches_per_epoch(), 1);
}

TEST(Idx, FashionMnistFromTheDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!is_idx_folder(dir)) GTEST_SKIP() << "dataset-fashion-mnist not installed (scripts/setup.sh installs it)";
  std::unique_ptr<MemoryPixels> px;
  const Dataset ds = load_idx_dataset(dir, 32, 100, &px);
  EXPECT_EQ(ds.records.size(), 200u);
  EXPECT_EQ(ds.class_names.size(), 10u);
  // The first training labels of Fashion-MNIST: 9 (ankle boot), 0, 0, 3, 0, 2.
  EXPECT_EQ(ds.records[0].label, 9);
  EXPECT_EQ(ds.records[3].label, 3);
  EXPECT_EQ(ds.records[5].label, 2);
  EXPECT_EQ(px->image_size(), 32);
  EXPECT_EQ(px->size(), 200u);
}

}  // namespace
}  // namespace wristssl::data
