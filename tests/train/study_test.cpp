#include "wristssl/train/study.h"

#include <gtest/gtest.h>

#include <set>

namespace wristssl::train {
namespace {

data::Dataset dataset(const std::vector<std::pair<std::string, std::string>>& path_group) {
  data::Dataset ds;
  ds.class_names = {"no", "yes"};
  int k = 0;
  for (const auto& [path, group] : path_group) ds.records.push_back({path, k++ % 2, group});
  return ds;
}

TEST(StudyPool, NoLabelledImageAndNoGroupHoldingOneIsPretrainedOn) {
  const data::Dataset labelled = dataset({{"/data/a.jpg", "c1"}, {"/data/b.jpg", "c2"}});
  const data::Dataset pool = dataset({{"/data/a.jpg", "c1"},     // the labelled image itself
                                      {"/data/./b.jpg", "c2"},   // the same file, spelt differently
                                      {"/data/c.jpg", "c2"},     // a duplicate of b (same cluster)
                                      {"/data/d.jpg", "c3"},     // free
                                      {"/data/e.jpg", "c4"}});   // free
  std::vector<std::string> why;
  const std::vector<int> keep = pretraining_pool(pool, labelled, true, &why);
  EXPECT_EQ(keep, (std::vector<int>{3, 4}));
  ASSERT_EQ(why.size(), 3u);
  EXPECT_NE(why[2].find("shares group 'c2'"), std::string::npos) << why[2];
  // Without group columns to compare, only the images themselves are removed.
  EXPECT_EQ(pretraining_pool(pool, labelled, false), (std::vector<int>{2, 3, 4}));
}

TEST(StudyEpochs, FewerLabelsMoreEpochs) {
  EXPECT_EQ(epochs_for_fraction(10, 1.0, "sqrt"), 10);
  EXPECT_EQ(epochs_for_fraction(10, 0.25, "sqrt"), 20);
  EXPECT_EQ(epochs_for_fraction(10, 0.1, "sqrt"), 32);
  EXPECT_EQ(epochs_for_fraction(10, 0.1, "same"), 10);
  EXPECT_EQ(epochs_for_fraction(0, 0.1, "sqrt"), 0);
  EXPECT_THROW(epochs_for_fraction(10, 0.1, "cube"), std::runtime_error);
}

TEST(StudyConfig, QuickPresetIsValidAndUnknownKeysAreRefused) {
  const nlohmann::json q = quick_study_config("x");
  EXPECT_EQ(q["out"], "x");
  std::set<std::string> arms;
  for (const auto& a : q["arms"]) arms.insert(a["name"].get<std::string>());
  EXPECT_TRUE(arms.count("scratch"));
  nlohmann::json bad = q;
  bad["fold"] = 3;  // a typo of "folds"
  EXPECT_THROW(run_study(bad, 1), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::train
