#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

#include "cli_test_util.h"
#include "commands.h"
#include "test_paths.h"  // the test helper adds no include path for tests/
#include "wristssl/train/pretrain.h"
#include "wristssl/util/fs.h"

namespace wristssl::cli {
namespace {

using testing::words;

std::string write_config(const std::string& text) {
  return testing::write_config("pretrain", text);
}

TEST(CliPretrain, FlagsSetTheOptions) {
  const train::PretrainOptions o = parse_pretrain(
      words("--data pool --layout folders --image-dir a --image-dir b --where hand=1 "
            "--group-column patient --out runs/p --split split.json --cache-dir cache --limit 100 "
            "--image-size 256 --crop-size 192 --epochs 7 --batch-size 16 --lr 0.05 --warmup-epochs "
            "1 --weight-decay 0.001 --optimizer lars --temperature 0.2 --method moco --moco-queue "
            "256 --moco-momentum 0.995 --moco-key-splits 1 --head linear --augment paper "
            "--precision bf16 --init r18.pt --seed 3 --workers 4 --knn-every 0 --knn-max 50 "
            "--max-steps 12 --sync-bn --dist-backend gloo --dist-timeout 60"));
  EXPECT_EQ(o.data.data, "pool");
  EXPECT_EQ(o.data.layout, data::Layout::kFolders);
  EXPECT_EQ(o.data.image_dirs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.data.where, std::vector<std::string>{"hand=1"});
  EXPECT_EQ(o.data.group_column, "patient");
  EXPECT_EQ(o.out, "runs/p");
  EXPECT_EQ(o.split, "split.json");
  EXPECT_EQ(o.cache_dir, "cache");
  EXPECT_EQ(o.limit, 100u);
  EXPECT_EQ(o.image_size, 256);
  EXPECT_EQ(o.crop_size, 192);
  EXPECT_EQ(o.epochs, 7);
  EXPECT_EQ(o.batch_size, 16);
  EXPECT_DOUBLE_EQ(o.lr, 0.05);
  EXPECT_EQ(o.warmup_epochs, 1);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.001);
  EXPECT_EQ(o.optimizer, "lars");
  EXPECT_DOUBLE_EQ(o.temperature, 0.2);
  EXPECT_EQ(o.method, "moco");
  EXPECT_EQ(o.moco_queue, 256);
  EXPECT_DOUBLE_EQ(o.moco_momentum, 0.995);
  EXPECT_EQ(o.moco_key_splits, 1);
  EXPECT_EQ(o.head, "linear");
  EXPECT_EQ(o.augment, "paper");
  EXPECT_EQ(o.precision, "bf16");
  EXPECT_EQ(o.init, "r18.pt");
  EXPECT_EQ(o.seed, 3u);
  EXPECT_EQ(o.workers, 4);
  EXPECT_EQ(o.knn_every, 0);
  EXPECT_EQ(o.knn_max, 50);
  EXPECT_EQ(o.max_steps, 12);
  EXPECT_TRUE(o.sync_bn);
  EXPECT_EQ(o.dist_backend, "gloo");
  EXPECT_EQ(o.dist_timeout, 60);
}

TEST(CliPretrain, NoFlagsKeepTheLibraryDefaults) {
  const train::PretrainOptions o = parse_pretrain({});
  EXPECT_EQ(train::to_json(o), train::to_json(train::PretrainOptions{}));
  EXPECT_EQ(o.data.layout, data::Layout::kAuto);
  EXPECT_EQ(o.epochs, 50);
  EXPECT_EQ(o.method, "simclr");
}

TEST(CliPretrain, BadValuesAreRefused) {
  EXPECT_THROW(parse_pretrain({"--epochs", "ten"}), CLI::ParseError);
  EXPECT_THROW(parse_pretrain({"--lr"}), CLI::ParseError);
  // train's option, not pretrain's
  EXPECT_THROW(parse_pretrain({"--probe-epochs", "3"}), CLI::ParseError);
  EXPECT_THROW(parse_pretrain({"--layout", "shelves"}), std::runtime_error);
}

TEST(CliPretrain, ConfigSetsDefaultsThatFlagsOverride) {
  const std::string config = write_config(
      R"({"epochs": 3, "lr": 0.2, "method": "dcl",
          "data": {"data": "pool", "layout": "folders"}})");
  // The flag wins wherever it stands relative to --config.
  for (const auto& args : {std::vector<std::string>{"--lr", "0.5", "--config", config},
                           std::vector<std::string>{"--config", config, "--lr", "0.5"},
                           std::vector<std::string>{"--config=" + config, "--lr=0.5"}}) {
    const train::PretrainOptions o = parse_pretrain(args);
    EXPECT_EQ(o.epochs, 3);
    EXPECT_DOUBLE_EQ(o.lr, 0.5);
    EXPECT_EQ(o.method, "dcl");
    EXPECT_EQ(o.data.data, "pool");
    EXPECT_EQ(o.data.layout, data::Layout::kFolders);  // no --layout: the config's stands
    EXPECT_EQ(o.batch_size, 32);                       // in neither: the library's default
  }
  const train::PretrainOptions o =
      parse_pretrain({"--config", config, "--layout", "manifest", "--data", "other"});
  EXPECT_EQ(o.data.layout, data::Layout::kManifest);
  EXPECT_EQ(o.data.data, "other");
}

TEST(CliPretrain, UnusableConfigNamesTheFile) {
  const std::string missing = testing::temp_dir("cli_pretrain") + "/missing.json";
  try {
    parse_pretrain({"--config", missing});
    FAIL() << "a missing config was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("config " + missing + ": ", 0), 0u) << e.what();
  }
  const std::string unknown = write_config(R"({"epoch": 3})");
  try {
    parse_pretrain({"--config", unknown});
    FAIL() << "an unknown key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'epoch'"), std::string::npos) << e.what();
  }
}

// The program reads the file when it registers the command, before parsing, and only when pretrain
// is the first word (as it always has).
TEST(CliPretrain, ProgramReadsTheConfigWhenRegistering) {
  const std::string bad = write_config("{not json");
  Globals g;
  CLI::App app;
  EXPECT_THROW(add_pretrain_command(app, g, {"pretrain", "--config", bad}), std::runtime_error);
  CLI::App other;
  EXPECT_NO_THROW(add_pretrain_command(other, g, {"train", "--config", bad}));
  // Global options before the command's name do not hide it (this used to read the file only when
  // "pretrain" came first).
  CLI::App after_globals;
  EXPECT_THROW(
      add_pretrain_command(after_globals, g, {"--threads", "2", "pretrain", "--config", bad}),
      std::runtime_error);

  CLI::App ok;
  const std::string good = write_config(R"({"epochs": 3})");
  const Command c = add_pretrain_command(ok, g, {"pretrain", "--config", good, "--workers", "2"});
  std::vector<std::string> last_first{"2", "--workers", good, "--config", "pretrain"};
  ok.parse(last_first);
  EXPECT_TRUE(*c.app);
}

}  // namespace
}  // namespace wristssl::cli
