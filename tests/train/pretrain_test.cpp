#include "wristssl/train/pretrain.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "wristssl/data/idx.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/stop_signal.h"

namespace wristssl::train {
namespace {

constexpr const char* kFashion = "/usr/share/datasets/fashion-mnist";

PretrainOptions tiny(const std::string& out) {
  PretrainOptions o;
  o.data.data = kFashion;
  o.out = out;
  o.limit = 48;  // 96 images (48 train + 48 t10k)
  o.image_size = 24;
  o.epochs = 2;
  o.batch_size = 16;  // 6 steps per epoch
  o.lr = 0.05;
  o.warmup_epochs = 1;
  o.threads = 2;
  o.workers = 2;
  o.knn_max = 40;
  o.cache_dir = out + "/cache";
  return o;
}

class Pretrain : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!data::is_idx_folder(kFashion)) GTEST_SKIP() << "dataset-fashion-mnist not installed (scripts/setup.sh)";
    util::request_stop(false);
  }
};

TEST_F(Pretrain, FirstLossIsLogTwoNMinusOneAndTheLossFalls) {
  const std::string out = testing::temp_dir("pre_loss");
  PretrainOptions o = tiny(out);
  o.epochs = 4;
  const PretrainResult r = run_pretrain(o);
  EXPECT_NEAR(r.first_loss, std::log(2.0 * 16 - 1), 0.25);  // ln 31 = 3.43
  EXPECT_LT(r.last_epoch_loss, r.first_loss - 0.1);
  EXPECT_EQ(r.steps, 4 * 6);
  for (const char* f : {"config.json", "steps.csv", "metrics.csv", "metrics.jsonl", "checkpoint.pt", "backbone.pt",
                        "summary.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  const std::string jsonl = util::read_text(out + "/metrics.jsonl");
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 4);
  EXPECT_NE(jsonl.find("knn_accuracy"), std::string::npos);
  EXPECT_NE(jsonl.find("embedding_std"), std::string::npos);
  const std::string steps = util::read_text(out + "/steps.csv");
  EXPECT_EQ(std::count(steps.begin(), steps.end(), '\n'), 1 + 24);
}

TEST_F(Pretrain, InterruptedAndResumedRunEndsWithTheSameWeights) {
  const PretrainResult whole = run_pretrain(tiny(testing::temp_dir("pre_whole")));
  ASSERT_FALSE(whole.interrupted);
  const std::string out = testing::temp_dir("pre_resume");
  PretrainOptions o = tiny(out);
  o.max_steps = 4;  // mid epoch 1
  EXPECT_TRUE(run_pretrain(o).interrupted);
  o.max_steps = 6;  // the end of epoch 1
  EXPECT_TRUE(run_pretrain(o).interrupted);
  o.max_steps = 9;  // mid epoch 2
  EXPECT_TRUE(run_pretrain(o).interrupted);
  o.max_steps = 0;
  const PretrainResult resumed = run_pretrain(o);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.steps, whole.steps);
  EXPECT_EQ(resumed.fingerprint, whole.fingerprint);
  const std::string steps = util::read_text(out + "/steps.csv");
  EXPECT_EQ(std::count(steps.begin(), steps.end(), '\n'), 1 + 12) << "no duplicated step lines";
}

TEST_F(Pretrain, MocoResumesWithItsKeyEncoderAndQueue) {
  // MoCo's state beyond the trained weights (the momentum encoder, the queue and where it is written)
  // must survive a stop: a resumed run ends bit-identical to an uninterrupted one only if it does.
  auto moco = [](const std::string& out) {
    PretrainOptions o = tiny(out);
    o.method = "moco";
    o.moco_queue = 40;  // not a multiple of the 32 keys per step: the queue wraps mid-batch
    o.temperature = 0.2;
    o.moco_momentum = 0.9;  // a key encoder that keeps up within these few steps
    o.epochs = 3;
    return o;
  };
  const PretrainResult whole = run_pretrain(moco(testing::temp_dir("pre_moco_whole")));
  ASSERT_FALSE(whole.interrupted);
  EXPECT_EQ(whole.steps, 18);
  // The queue starts as random directions, easier negatives than real keys: the first loss is well below
  // chance, ln(K + 1) = ln 41. (Whether MoCo learns is measured on radiographs by the study, not in 18 steps
  // of 24 px images, where its loss climbs towards chance as real keys fill the queue.)
  EXPECT_LT(whole.first_loss, std::log(41.0) - 1.0);
  EXPECT_TRUE(std::isfinite(whole.last_epoch_loss));
  const std::string out = testing::temp_dir("pre_moco_resume");
  PretrainOptions o = moco(out);
  o.max_steps = 4;
  EXPECT_TRUE(run_pretrain(o).interrupted);
  o.max_steps = 10;
  EXPECT_TRUE(run_pretrain(o).interrupted);
  o.max_steps = 0;
  const PretrainResult resumed = run_pretrain(o);
  EXPECT_EQ(resumed.steps, whole.steps);
  EXPECT_EQ(resumed.fingerprint, whole.fingerprint);
  // A checkpoint of one method is not resumed by another.
  o.method = "simclr";
  o.epochs = 4;
  EXPECT_THROW(run_pretrain(o), std::runtime_error);
}

TEST_F(Pretrain, ACheckpointOfOtherOptionsIsRefused) {
  const std::string out = testing::temp_dir("pre_other");
  PretrainOptions o = tiny(out);
  o.max_steps = 2;
  run_pretrain(o);
  o.temperature = 0.1;
  try {
    run_pretrain(o);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("temperature"), std::string::npos) << e.what();
  }
}

TEST_F(Pretrain, ADamagedCheckpointIsRefusedWithAClearMessage) {
  const std::string out = testing::temp_dir("pre_damaged");
  PretrainOptions o = tiny(out);
  o.max_steps = 2;
  run_pretrain(o);
  std::string bytes = util::read_text(out + "/checkpoint.pt");
  bytes[bytes.size() - 100] ^= 0x20;
  util::atomic_write(out + "/checkpoint.pt", bytes);
  try {
    run_pretrain(o);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace wristssl::train

namespace wristssl::train {
namespace {

// The bundled FracAtlas sample (labelled, binary) at 32 px, batch 16, 2 threads, kNN k 5, into a fresh folder.
PretrainOptions labelled_sample(const std::string& tag, int epochs) {
  PretrainOptions o;
  o.data.data = testing::repo_path("samples/fracatlas/labels.csv");
  o.data.group_column = "dup_cluster";
  o.out = testing::temp_dir(tag);
  o.image_size = 32;
  o.epochs = epochs;
  o.batch_size = 16;
  o.threads = 2;
  o.knn_k = 5;
  o.cache_dir = o.out + "/cache";
  return o;
}

TEST(PretrainKnn, OnTwoClassesTheMonitorReportsAuroc) {
  // The bundled FracAtlas sample is binary (fractured / not): the monitor must give an AUROC in [0, 1]
  // beside the accuracy; an untrained backbone's AUROC is near chance, not at the majority share.
  PretrainOptions o = labelled_sample("pre_knn_auroc", 1);
  o.knn_every = 1;
  const std::string out = o.out;
  run_pretrain(o);
  const std::string line = util::read_text(out + "/metrics.jsonl");
  const nlohmann::json row = nlohmann::json::parse(line.substr(0, line.find('\n')));
  ASSERT_TRUE(row.contains("knn_auroc")) << line;
  EXPECT_GE(row["knn_auroc"].get<double>(), 0.0);
  EXPECT_LE(row["knn_auroc"].get<double>(), 1.0);
  EXPECT_GT(row["knn_accuracy"].get<double>(), 0.0);
}


TEST(PretrainKnn, ByDefaultTheMonitorAndCheckpointsAreSizedToTheEpoch) {
  // knn_every -1 (the default): the monitor runs after the first and the last epoch, and in between only once
  // its last cost is at most 5% of the training time since; checkpoints likewise (the first and the last
  // always). The rule is checked on the logged seconds, whatever this machine's speed.
  const PretrainOptions o = labelled_sample("pre_extras", 5);
  const std::string out = o.out;
  ASSERT_EQ(o.knn_every, -1);
  run_pretrain(o);
  std::vector<nlohmann::json> rows;
  std::istringstream lines(util::read_text(out + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 5u);
  for (const char* key : {"knn_seconds", "checkpoint_seconds"}) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(rows.front().contains(key));
    EXPECT_TRUE(rows.back().contains(key));
    double last_cost = rows.front()[key].get<double>(), training = 0;
    for (size_t e = 1; e + 1 < rows.size(); ++e) {
      training += rows[e]["seconds"].get<double>();
      const bool due = last_cost <= 0.05 * training;
      EXPECT_EQ(rows[e].contains(key), due) << "epoch " << e + 1 << ": last cost " << last_cost << " s, "
                                             << training << " s of training since";
      if (rows[e].contains(key)) {
        last_cost = rows[e][key].get<double>();
        training = 0;
      }
    }
  }
  EXPECT_TRUE(rows.back().contains("knn_auroc"));
  EXPECT_TRUE(std::filesystem::exists(out + "/checkpoint.pt"));
}

}  // namespace
}  // namespace wristssl::train
