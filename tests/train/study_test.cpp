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

TEST(StudyWork, CountsEachUsedPretrainingAndEveryFineTuningRun) {
  const nlohmann::json cfg = nlohmann::json::parse(R"({
    "folds": 5, "val_fraction": 0.15, "seeds": [1, 2], "fractions": [0.25, 1.0], "epochs_rule": "sqrt",
    "pretrainings": {"a": {"epochs": 18}, "unused": {"epochs": 5}},
    "classifier": {"finetune_epochs": 10},
    "arms": [{"name": "scratch", "init": "random"},
             {"name": "a-lp", "init": "simclr", "pretraining": "a", "finetune_epochs": 0}]})");
  // By hand, 1,000 labelled and 2,000 pool images: training images per run 1,000 x 4/5 x 0.85 = 680, 10 runs
  // (5 folds x 2 seeds) per fraction. scratch: 10 epochs x 680 x 10 = 68,000 at 100%; 20 epochs x 170 x 10 =
  // 34,000 at 25%. The probe arm fine-tunes nothing. Pretraining "a": 2 views x 18 epochs x 2,000 = 72,000;
  // "unused" serves no arm and is not run.
  EXPECT_NEAR(study_training_views(cfg, 1000, 2000), 68000 + 34000 + 72000, 1e-6);
  // The bundled --quick preset stays far below the threshold at which a study tunes the machine first;
  // the FracAtlas study (1,050 labelled, 2,605 in the pool) is far above it.
  EXPECT_LT(study_training_views(quick_study_config("x"), 80, 200), 100000);
  const nlohmann::json fracatlas = nlohmann::json::parse(R"({
    "folds": 5, "val_fraction": 0.15, "seeds": [1], "fractions": [0.1, 0.25, 1.0], "epochs_rule": "sqrt",
    "pretrainings": {"dcl": {"epochs": 18}, "moco": {"epochs": 18}},
    "classifier": {"finetune_epochs": 10},
    "arms": [{"name": "scratch", "init": "random"}, {"name": "dcl-lp", "pretraining": "dcl", "finetune_epochs": 0},
             {"name": "moco-lp", "pretraining": "moco", "finetune_epochs": 0}, {"name": "dcl-lpft", "pretraining": "dcl"}]})");
  EXPECT_GT(study_training_views(fracatlas, 1050, 2605), 2 * 2 * 18 * 2605.0);
}

TEST(StudyPretraining, TheStudysSeedUnlessThePretrainingSetsItsOwn) {
  const nlohmann::json cfg = nlohmann::json::parse(R"({
    "out": "runs/s", "seed": 7, "image_size": 192, "cache_dir": "c",
    "pretrainings": {"dcl": {"method": "dcl", "epochs": 18, "crop_size": 128},
                     "dcl-s2": {"method": "dcl", "epochs": 18, "crop_size": 128, "seed": 2}}})");
  const PretrainOptions first = study_pretrain_options(cfg, "dcl");
  const PretrainOptions second = study_pretrain_options(cfg, "dcl-s2");
  EXPECT_EQ(first.seed, 7u);   // the study's seed
  EXPECT_EQ(second.seed, 2u);  // its own: a second draw of the same recipe
  EXPECT_EQ(first.out, "runs/s/pretrain-dcl");
  EXPECT_EQ(second.out, "runs/s/pretrain-dcl-s2");
  for (const PretrainOptions* o : {&first, &second}) {
    EXPECT_EQ(o->method, "dcl");
    EXPECT_EQ(o->epochs, 18);
    EXPECT_EQ(o->crop_size, 128);
    EXPECT_EQ(o->image_size, 192);
    EXPECT_EQ(o->cache_dir, "c");
    EXPECT_EQ(o->split, "runs/s/pretrain_pool.json");
  }
  // A lone "pretrain" section writes to OUT/pretrain; a name not configured is refused.
  const nlohmann::json lone = nlohmann::json::parse(R"({"out": "o", "pretrain": {"epochs": 3}})");
  EXPECT_EQ(study_pretrain_options(lone, "pretrain").out, "o/pretrain");
  EXPECT_EQ(study_pretrain_options(lone, "pretrain").seed, 1u);
  EXPECT_THROW(study_pretrain_options(cfg, "moco"), std::runtime_error);
}

TEST(StudyConfig, ComparisonsNameTwoDifferentArms) {
  const std::vector<std::string> arms = {"scratch", "dcl-lp", "dcl-s2-lp"};
  auto pairs = [&](const char* compare) {
    return study_comparisons(nlohmann::json::parse(std::string(R"({"compare": )") + compare + "}"), arms);
  };
  EXPECT_TRUE(study_comparisons(nlohmann::json::object(), arms).empty());
  const auto p = pairs(R"([["dcl-s2-lp", "dcl-lp"], ["dcl-lp", "scratch"]])");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], (std::pair<std::string, std::string>{"dcl-s2-lp", "dcl-lp"}));
  EXPECT_EQ(p[1], (std::pair<std::string, std::string>{"dcl-lp", "scratch"}));
  EXPECT_THROW(pairs(R"([["dcl-lp", "moco-lp"]])"), std::runtime_error);   // not an arm
  EXPECT_THROW(pairs(R"([["dcl-lp", "dcl-lp"]])"), std::runtime_error);    // itself
  EXPECT_THROW(pairs(R"([["dcl-lp"]])"), std::runtime_error);              // not a pair
  EXPECT_THROW(pairs(R"({"dcl-lp": "scratch"})"), std::runtime_error);     // not a list
  // The quick preset compares two of its own arms, so the --quick study runs this path end to end.
  const nlohmann::json q = quick_study_config("x");
  std::vector<std::string> quick_arms;
  for (const auto& a : q["arms"]) quick_arms.push_back(a["name"]);
  EXPECT_EQ(study_comparisons(q, quick_arms).size(), 1u);
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
