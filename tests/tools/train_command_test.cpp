#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

#include "cli_test_util.h"
#include "commands.h"
#include "test_paths.h"  // the test helper adds no include path for tests/
#include "wristssl/train/classifier.h"
#include "wristssl/util/fs.h"

namespace wristssl::cli {
namespace {

using testing::words;

std::string write_config(const std::string& text) { return testing::write_config("train", text); }

TEST(CliTrain, FlagsSetTheOptions) {
  const train::ClassifierOptions o = parse_train(words(
      "--data labels.csv --layout manifest --image-dir img --where hand=1 --group-column "
      "dup_cluster --out runs/c --split split.json --cache-dir cache --image-size 192 --backbone "
      "runs/p/backbone.pt --init random --probe-epochs 5 --finetune-epochs 3 --batch-size 8 "
      "--lr-probe 0.1 --lr-finetune 0.0005 --imbalance balanced --label-fraction 0.25 "
      "--threshold-rule sensitivity:0.95 --refer-fraction 0.2 --probe-method logistic --probe-l2 "
      "0.01 --bn-reestimate --warmup-epochs 2 --backbone-lr-scale 0.3 --crop-size 160 --workers 1 "
      "--precision fp32 --seed 9 --sync-bn --dist-backend nccl --dist-timeout 120 --limit 64"));
  EXPECT_EQ(o.data.data, "labels.csv");
  EXPECT_EQ(o.data.layout, data::Layout::kManifest);
  EXPECT_EQ(o.data.image_dirs, std::vector<std::string>{"img"});
  EXPECT_EQ(o.data.where, std::vector<std::string>{"hand=1"});
  EXPECT_EQ(o.data.group_column, "dup_cluster");
  EXPECT_EQ(o.out, "runs/c");
  EXPECT_EQ(o.split, "split.json");
  EXPECT_EQ(o.cache_dir, "cache");
  EXPECT_EQ(o.image_size, 192);
  EXPECT_EQ(o.backbone, "runs/p/backbone.pt");
  EXPECT_EQ(o.init, "random");
  EXPECT_EQ(o.probe_epochs, 5);
  EXPECT_EQ(o.finetune_epochs, 3);
  EXPECT_EQ(o.batch_size, 8);
  EXPECT_DOUBLE_EQ(o.lr_probe, 0.1);
  EXPECT_DOUBLE_EQ(o.lr_finetune, 0.0005);
  EXPECT_EQ(o.imbalance, "balanced");
  EXPECT_DOUBLE_EQ(o.label_fraction, 0.25);
  EXPECT_EQ(o.threshold_rule, "sensitivity:0.95");
  EXPECT_DOUBLE_EQ(o.refer_fraction, 0.2);
  EXPECT_EQ(o.probe_method, "logistic");
  EXPECT_DOUBLE_EQ(o.probe_l2, 0.01);
  EXPECT_TRUE(o.bn_reestimate);
  EXPECT_EQ(o.warmup_epochs, 2);
  EXPECT_DOUBLE_EQ(o.backbone_lr_scale, 0.3);
  EXPECT_EQ(o.crop_size, 160);
  EXPECT_EQ(o.workers, 1);
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_EQ(o.seed, 9u);
  EXPECT_TRUE(o.sync_bn);
  EXPECT_EQ(o.dist_backend, "nccl");
  EXPECT_EQ(o.dist_timeout, 120);
  EXPECT_EQ(o.limit, 64u);
}

TEST(CliTrain, NoFlagsKeepTheLibraryDefaults) {
  const train::ClassifierOptions o = parse_train({});
  EXPECT_EQ(train::to_json(o), train::to_json(train::ClassifierOptions{}));
  EXPECT_EQ(o.init, "simclr");
  EXPECT_EQ(o.probe_epochs, 40);
  EXPECT_FALSE(o.bn_reestimate);
}

TEST(CliTrain, BadValuesAreRefused) {
  EXPECT_THROW(parse_train({"--label-fraction", "a quarter"}), CLI::ParseError);
  EXPECT_THROW(parse_train({"--method", "moco"}), CLI::ParseError);  // pretrain's, not train's
  EXPECT_THROW(parse_train({"--bn-reestimate=maybe"}), CLI::ParseError);
  EXPECT_THROW(parse_train({"--layout", "shelves"}), std::runtime_error);
}

TEST(CliTrain, ConfigSetsDefaultsThatFlagsOverride) {
  const std::string config = write_config(
      R"({"probe_epochs": 4, "finetune_epochs": 2, "backbone": "b.pt",
          "data": {"data": "labels.csv", "group_column": "dup"}})");
  const train::ClassifierOptions o =
      parse_train({"--finetune-epochs", "6", "--config", config, "--out", "runs/c"});
  EXPECT_EQ(o.probe_epochs, 4);
  EXPECT_EQ(o.finetune_epochs, 6);
  EXPECT_EQ(o.backbone, "b.pt");
  EXPECT_EQ(o.data.data, "labels.csv");
  EXPECT_EQ(o.data.group_column, "dup");
  EXPECT_EQ(o.out, "runs/c");
  EXPECT_EQ(o.batch_size, 32);
}

TEST(CliTrain, UnusableConfigNamesTheFile) {
  const std::string config = write_config(R"({"probe_epochs": "many"})");
  try {
    parse_train({"--config", config});
    FAIL() << "a config with a string for a number was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("config " + config + ": ", 0), 0u) << e.what();
  }
}

TEST(CliTrain, ProgramReadsTheConfigOnlyForTrain) {
  const std::string bad = write_config("{not json");
  Globals g;
  CLI::App app;
  EXPECT_THROW(add_train_command(app, g, {"train", "--config", bad}), std::runtime_error);
  CLI::App other;
  EXPECT_NO_THROW(add_train_command(other, g, {"pretrain", "--config", bad}));
}

}  // namespace
}  // namespace wristssl::cli
