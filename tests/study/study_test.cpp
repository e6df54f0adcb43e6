#include "wristssl/study/study.h"

#include <gtest/gtest.h>

#include <set>

#include "wristssl/study/cross_validation.h"

namespace wristssl::study {
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
  const data::Dataset pool = dataset({{"/data/a.jpg", "c1"},    // the labelled image itself
                                      {"/data/./b.jpg", "c2"},  // the same file, spelt differently
                                      {"/data/c.jpg", "c2"},    // a duplicate of b (same cluster)
                                      {"/data/d.jpg", "c3"},    // free
                                      {"/data/e.jpg", "c4"}});  // free
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
  const StudyConfig cfg = parse_study_config(nlohmann::json::parse(R"({
    "out": "o", "data": "d", "pretrain_data": "p",
    "folds": 5, "val_fraction": 0.15, "seeds": [1, 2], "fractions": [0.25, 1.0], "epochs_rule": "sqrt",
    "pretrainings": {"a": {"epochs": 18}, "unused": {"epochs": 5}},
    "classifier": {"finetune_epochs": 10},
    "arms": [{"name": "scratch", "init": "random"},
             {"name": "a-lp", "init": "simclr", "pretraining": "a", "finetune_epochs": 0}]})"));
  // By hand, 1,000 labelled and 2,000 pool images: training images per run 1,000 x 4/5 x 0.85 =
  // 680, 10 runs (5 folds x 2 seeds) per fraction. scratch: 10 epochs x 680 x 10 = 68,000 at 100%;
  // 20 epochs x 170 x 10 = 34,000 at 25%. The probe arm fine-tunes nothing. Pretraining "a": 2
  // views x 18 epochs x 2,000 = 72,000; "unused" serves no arm and is not run.
  EXPECT_NEAR(study_training_views(cfg, 1000, 2000), 68000 + 34000 + 72000, 1e-6);
  // The bundled --quick preset stays far below the threshold at which a study tunes the machine
  // first; the FracAtlas study (1,050 labelled, 2,605 in the pool) is far above it.
  EXPECT_LT(study_training_views(quick_study_config(), 80, 200), 100000);
  const StudyConfig fracatlas = parse_study_config(nlohmann::json::parse(R"({
    "out": "o", "data": "d", "pretrain_data": "p", "folds": 5, "val_fraction": 0.15, "seeds": [1], "fractions": [0.1, 0.25, 1.0], "epochs_rule": "sqrt",
    "pretrainings": {"dcl": {"epochs": 18}, "moco": {"epochs": 18}},
    "classifier": {"finetune_epochs": 10},
    "arms": [{"name": "scratch", "init": "random"}, {"name": "dcl-lp", "pretraining": "dcl", "finetune_epochs": 0},
             {"name": "moco-lp", "pretraining": "moco", "finetune_epochs": 0}, {"name": "dcl-lpft", "pretraining": "dcl"}]})"));
  EXPECT_GT(study_training_views(fracatlas, 1050, 2605), 2 * 2 * 18 * 2605.0);
}

TEST(StudyPretraining, SupervisedTransferStartsFromTheOneItNamesOnThePoolsLabels) {
  const StudyConfig cfg = parse_study_config(nlohmann::json::parse(R"({
    "out": "o", "data": "d", "pretrain_data": {"data": "pool.csv", "boxes": "yolo"}, "image_size": 192,
    "seed": 4, "val_fraction": 0.2, "folds": 5, "seeds": [4], "fractions": [1.0],
    "pretrainings": {"dcl": {"method": "dcl", "epochs": 18},
                     "sup": {"method": "supervised", "pretraining": "dcl", "image_size": 320, "crop_size": 160,
                             "crops": "native", "pooling": "lse", "box_loss": 1, "probe_epochs": 0,
                             "finetune_epochs": 6}},
    "arms": [{"name": "scratch", "init": "random"},
             {"name": "sup-ft", "init": "simclr", "pretraining": "sup", "image_size": 320}]})"));
  // The arm uses "sup", which starts from "dcl": both run.
  EXPECT_EQ(cfg.used_pretrainings(), (std::vector<std::string>{"dcl", "sup"}));
  const train::ClassifierOptions co =
      study_supervised_options(cfg, "sup", {{"dcl", "o/pretrain-dcl/backbone.pt"}});
  EXPECT_EQ(co.out, "o/pretrain-sup");
  EXPECT_EQ(co.split, "o/pretrain-sup/split.json");
  EXPECT_EQ(co.data.data, "pool.csv");
  EXPECT_EQ(co.data.boxes, "yolo");
  EXPECT_EQ(co.init, "simclr");
  EXPECT_EQ(co.backbone, "o/pretrain-dcl/backbone.pt");
  EXPECT_EQ(co.image_size, 320);
  EXPECT_EQ(co.crops, "native");
  EXPECT_EQ(co.box_loss, 1.0);
  EXPECT_EQ(co.finetune_epochs, 6);
  EXPECT_EQ(co.seed, 4u);
  EXPECT_EQ(co.test_fraction, 0.0);
  EXPECT_EQ(cfg.arm("sup-ft").image_size, 320);
  EXPECT_EQ(cfg.arm("scratch").image_size, 0);  // the study's
  // By hand, 1,000 labelled and 2,000 pool images: a fold trains on 1,000 x 4/5 x 0.8 = 640, 5
  // folds; scratch and sup-ft 10 epochs (the default) each: 2 x 5 x 10 x 640 = 64,000; dcl 2 views
  // x 18 epochs x 2,000 = 72,000; sup 6 epochs x 2,000 x 0.8 (its validation share kept out) =
  // 9,600.
  EXPECT_NEAR(study_training_views(cfg, 1000, 2000), 64000 + 72000 + 9600, 1e-6);
  EXPECT_THROW(study_pretrain_options(cfg, "sup"), std::runtime_error);
  EXPECT_THROW(study_supervised_options(cfg, "dcl", {}), std::runtime_error);
}

TEST(StudyPretraining, ASupervisedPretrainingIsCheckedLikeAnArm) {
  auto parse = [](const std::string& sup) {
    return parse_study_config(
        nlohmann::json::parse(R"({"out": "o", "data": "d", "pretrain_data": "p",
      "pretrainings": {"sup": )" +
                              sup + R"(}, "arms": [{"name": "scratch", "init": "random"},
      {"name": "t", "init": "simclr", "pretraining": "sup"}]})"));
  };
  EXPECT_NO_THROW(parse(R"({"method": "supervised"})"));
  auto message = [&](const std::string& sup) {
    try {
      parse(sup);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message(R"({"method": "supervised", "finetune_epoch": 3})").find("finetune_epoch"),
            std::string::npos);
  EXPECT_NE(message(R"({"method": "supervised", "pretraining": "dcl"})")
                .find("'dcl', which is not configured"),
            std::string::npos);
  EXPECT_EQ(message(R"({"method": "supervised", "crops": "tiles"})"),
            "study config: pretraining 'sup': --crops must be resized or native");
  EXPECT_EQ(
      message(R"({"method": "supervised", "crops": "native", "pooling": "lse", "box_loss": 1})"),
      "study config: pretraining 'sup': --box-loss needs --crops native and --boxes FOLDER");
}

TEST(StudyPretraining, TheStudysSeedUnlessThePretrainingSetsItsOwn) {
  const StudyConfig cfg = parse_study_config(nlohmann::json::parse(R"({
    "out": "runs/s", "data": "d", "pretrain_data": "p", "seed": 7, "image_size": 192, "cache_dir": "c",
    "pretrainings": {"dcl": {"method": "dcl", "epochs": 18, "crop_size": 128},
                     "dcl-s2": {"method": "dcl", "epochs": 18, "crop_size": 128, "seed": 2}},
    "arms": [{"name": "scratch", "init": "random"}, {"name": "dcl-lp", "pretraining": "dcl"},
             {"name": "dcl-s2-lp", "pretraining": "dcl-s2"}]})"));
  const train::PretrainOptions first = study_pretrain_options(cfg, "dcl");
  const train::PretrainOptions second = study_pretrain_options(cfg, "dcl-s2");
  EXPECT_EQ(first.seed, 7u);   // the study's seed
  EXPECT_EQ(second.seed, 2u);  // its own: a second draw of the same recipe
  EXPECT_EQ(first.out, "runs/s/pretrain-dcl");
  EXPECT_EQ(second.out, "runs/s/pretrain-dcl-s2");
  for (const train::PretrainOptions* o : {&first, &second}) {
    EXPECT_EQ(o->method, "dcl");
    EXPECT_EQ(o->epochs, 18);
    EXPECT_EQ(o->crop_size, 128);
    EXPECT_EQ(o->image_size, 192);
    EXPECT_EQ(o->cache_dir, "c");
    EXPECT_EQ(o->split, "runs/s/pretrain_pool.json");
  }
  // A lone "pretrain" section writes to OUT/pretrain; a name not configured is refused.
  const StudyConfig lone = parse_study_config(nlohmann::json::parse(
      R"({"out": "o", "data": "d", "pretrain_data": "p", "pretrain": {"epochs": 3}, "arms": [{"name": "scratch"}]})"));
  EXPECT_EQ(study_pretrain_options(lone, "pretrain").out, "o/pretrain");
  EXPECT_EQ(study_pretrain_options(lone, "pretrain").seed, 1u);
  EXPECT_THROW(study_pretrain_options(cfg, "moco"), std::runtime_error);
}

// A minimal valid config with three arms, "compare" set to `compare` (JSON text) when given.
nlohmann::json three_arms(const char* compare = nullptr) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "out": "o", "data": "d", "pretrain_data": "p", "pretrainings": {"dcl": {}, "dcl-s2": {"seed": 2}},
    "arms": [{"name": "scratch", "init": "random"}, {"name": "dcl-lp", "pretraining": "dcl"},
             {"name": "dcl-s2-lp", "pretraining": "dcl-s2"}]})");
  if (compare) j["compare"] = nlohmann::json::parse(compare);
  return j;
}

// The message of what parse_study_config throws on `j`, or "" when it accepts it.
std::string refusal(const nlohmann::json& j) {
  try {
    parse_study_config(j);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(StudyConfig, ComparisonsNameTwoDifferentArms) {
  EXPECT_TRUE(parse_study_config(three_arms()).compare.empty());
  const auto p =
      parse_study_config(three_arms(R"([["dcl-s2-lp", "dcl-lp"], ["dcl-lp", "scratch"]])")).compare;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], (std::pair<std::string, std::string>{"dcl-s2-lp", "dcl-lp"}));
  EXPECT_EQ(p[1], (std::pair<std::string, std::string>{"dcl-lp", "scratch"}));
  EXPECT_EQ(refusal(three_arms(R"([["dcl-lp", "moco-lp"]])")),
            "study config: 'compare' names arm 'moco-lp', which is not in 'arms'");
  EXPECT_EQ(refusal(three_arms(R"([["dcl-lp", "dcl-lp"]])")),
            "study config: 'compare' pairs arm 'dcl-lp' with itself");
  EXPECT_NE(refusal(three_arms(R"([["dcl-lp"]])")).find("must be [arm, other arm]"),
            std::string::npos);
  EXPECT_NE(refusal(three_arms(R"({"dcl-lp": "scratch"})")).find("must be a list"),
            std::string::npos);
  // The quick preset compares two of its own arms, so the --quick study runs this path end to end.
  EXPECT_EQ(quick_study_config().compare.size(), 1u);
}

TEST(StudyConfig, EachMistakeIsRefusedByName) {
  nlohmann::json j = three_arms();
  j["fold"] = 3;  // a typo of "folds"
  EXPECT_EQ(refusal(j), "study config: unknown key 'fold'");
  j = three_arms();
  j["arms"][1]["name"] = "scratch";
  EXPECT_EQ(refusal(j), "study config: arm 'scratch' appears twice");
  j = three_arms();
  j["arms"][1]["name"] = "cv";
  EXPECT_EQ(refusal(j), "study config: arm name 'cv' is not usable as a folder name");
  j = three_arms();
  j["baseline_arm"] = "random";
  EXPECT_EQ(refusal(j), "study config: no arm named 'random' (baseline_arm)");
  j = three_arms();
  j["fractions"] = {0.5, 1.5};
  EXPECT_EQ(refusal(j), "study config: label fraction 1.500000 not in (0, 1]");
  j = three_arms();
  j["arms"][1]["pretraining"] = "moco";
  EXPECT_EQ(refusal(j),
            "study config: arm 'dcl-lp' needs a pretraining 'moco', which is not configured");
  j = three_arms();
  j.erase("pretrain_data");
  EXPECT_EQ(refusal(j), "study config: SimCLR arms need 'pretrain_data'");
  j = three_arms();
  j["epochs_rule"] = "cube";
  EXPECT_EQ(refusal(j), "epochs_rule must be 'same' or 'sqrt', not 'cube'");
  j = three_arms();
  j["arms"][2]["finetune_epoch"] = 3;  // a typo inside an arm: the classifier's own parser names it
  EXPECT_NE(refusal(j).find("'finetune_epoch'"), std::string::npos) << refusal(j);
}

TEST(StudyConfig, DefaultsAndTheArmsRecipes) {
  nlohmann::json j = three_arms();
  j["classifier"] = {{"finetune_epochs", 7}, {"lr_finetune", 0.02}};
  j["arms"][1]["finetune_epochs"] = 0;
  const StudyConfig c = parse_study_config(j);
  EXPECT_EQ(c.folds, 5);
  EXPECT_EQ(c.seed, 1u);
  EXPECT_EQ(c.seeds, (std::vector<uint64_t>{1}));
  EXPECT_EQ(c.fractions, (std::vector<double>{0.1, 0.25, 1.0}));
  EXPECT_EQ(c.image_size, 512);
  EXPECT_EQ(c.baseline_arm, "scratch");
  // The classifier section, then each arm's keys over it.
  EXPECT_EQ(c.arm("scratch").classifier.finetune_epochs, 7);
  EXPECT_EQ(c.arm("scratch").classifier.init, "random");
  EXPECT_EQ(c.arm("scratch").pretraining, "");
  EXPECT_EQ(c.arm("dcl-lp").classifier.finetune_epochs, 0);
  EXPECT_DOUBLE_EQ(c.arm("dcl-lp").classifier.lr_finetune, 0.02);
  EXPECT_EQ(c.arm("dcl-lp").pretraining, "dcl");
  EXPECT_EQ(c.used_pretrainings(), (std::vector<std::string>{"dcl", "dcl-s2"}));
}

TEST(StudyConfig, TheQuickPresetIsTheConfigFileInTheRepository) {
  const StudyConfig q = quick_study_config();
  EXPECT_EQ(q.out, "runs/study-quick");
  EXPECT_EQ(q.arm_names(),
            (std::vector<std::string>{"scratch", "simclr-lp", "moco-lp", "dcl-lpft"}));
  EXPECT_EQ(
      q.source,
      read_study_config(std::string(WRISTSSL_SOURCE_DIR) + "/configs/study_quick.json").source);
  EXPECT_EQ(q.folds, 2);
  EXPECT_EQ(q.image_size, 64);
}

}  // namespace
}  // namespace wristssl::study
