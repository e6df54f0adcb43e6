#include "wristssl/study/protocol.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_paths.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/models/bundle.h"
#include "wristssl/report/html_report.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/stop_signal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::study {
namespace {

// The whole protocol on the bundled sample, tiny: split, pretrain, probe + fine-tune, baseline,
// evaluation and reports. Checks the stages' outputs agree with each other.
TEST(Protocol, RunsEveryStageOnTheBundledSample) {
  util::request_stop(false);
  const std::string dir = testing::temp_dir("protocol");
  const json cfg = {
      {"out", dir + "/run"},
      {"data",
       {{"data", testing::repo_path("samples/fracatlas/labels.csv")},
        {"group_column", "dup_cluster"}}},
      {"seed", 2},
      {"image_size", 48},
      {"cache_dir", dir + "/cache"},
      {"split", {{"val_fraction", 0.25}, {"test_fraction", 0.3}}},
      {"bootstrap", 200},
      {"pretrain",
       {{"epochs", 2},
        {"batch_size", 16},
        {"lr", 0.05},
        {"warmup_epochs", 1},
        {"knn_every", 1},
        {"knn_max", 60}}},
      {"classifier", {{"probe_epochs", 2}, {"finetune_epochs", 1}, {"batch_size", 16}}},
      {"baseline", {{"probe_epochs", 0}, {"finetune_epochs", 2}}}};
  util::atomic_write(dir + "/config.json", cfg.dump());
  const json summary = run_protocol(dir + "/config.json", 2);
  const std::string run = dir + "/run";
  for (const char* f :
       {"split.json", "summary.json", "pretrain/backbone.pt", "classifier/model.pt",
        "classifier/threshold.json", "classifier/report.html", "classifier/metrics_test.json",
        "classifier/metrics_val.json", "classifier/model.wristssl", "baseline/report.html",
        "baseline/model.wristssl"}) {
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;
  }
  // The test scores file and the metrics file say the same thing.
  const util::CsvTable scores = util::read_csv(run + "/classifier/scores_test.csv");
  const json m = json::parse(util::read_text(run + "/classifier/metrics_test.json"));
  ASSERT_EQ(static_cast<size_t>(m["n"].get<int>()), scores.rows.size());
  std::vector<int> labels;
  std::vector<double> s;
  for (const auto& row : scores.rows) {
    labels.push_back(std::stoi(row[scores.column("label")]));
    s.push_back(std::stod(row[scores.column("score")]));
  }
  EXPECT_NEAR(m["metrics"]["auroc"]["value"].get<double>(), metrics::auroc(labels, s), 1e-4);
  const json thr = json::parse(util::read_text(run + "/classifier/threshold.json"));
  EXPECT_DOUBLE_EQ(m["threshold"].get<double>(), thr["decision"]["threshold"].get<double>())
      << "the test set uses the threshold frozen on validation (on the calibrated scale)";
  // The calibrated threshold is the raw one moved by the temperature: no decision changes.
  const double t = thr["decision"]["calibration"]["temperature"].get<double>();
  EXPECT_NEAR(metrics::logit(thr["decision"]["threshold"].get<double>()) * t,
              metrics::logit(thr["threshold"].get<double>()), 1e-9);
  const json& band = thr["decision"]["refer_band"];
  EXPECT_LE(band["lo"].get<double>(), thr["decision"]["threshold"].get<double>());
  EXPECT_GE(band["hi"].get<double>(), thr["decision"]["threshold"].get<double>());
  // The run's bundle holds the test metrics and reads back verified.
  const models::Bundle bundle = models::read_bundle(run + "/classifier/model.wristssl");
  EXPECT_EQ(bundle.manifest["test_metrics"]["n"], m["n"]);
  EXPECT_EQ(bundle.manifest["decision"], thr["decision"]);
  const std::string html = util::read_text(run + "/classifier/report.html");
  for (const auto& id : report::report_figure_ids())
    EXPECT_NE(html.find("id=\"" + id + "\""), std::string::npos) << id;
  EXPECT_EQ(summary["classifier"]["init"], "simclr");
  EXPECT_EQ(summary["baseline"]["init"], "random");
  // No val or test image was used for pretraining: the pretrain config counts what it used.
  const json pc = json::parse(util::read_text(run + "/pretrain/config.json"));
  const json split = json::parse(util::read_text(run + "/split.json"));
  int train_readable = 0;
  for (const auto& r : split["records"]) train_readable += r["part"] == "train";
  EXPECT_LE(pc["resolved"]["pretrain_images"].get<int>(), train_readable);

  // Rerunning resumes every stage: nothing is trained again (the weights' files are untouched, byte
  // for byte and in time), and the rerun's test AUROC is the one recomputed above from the first
  // run's scores file.
  const auto model_time = fs::last_write_time(run + "/classifier/model.pt");
  const std::string model_bytes = util::read_text(run + "/classifier/model.pt");
  const std::string backbone_bytes = util::read_text(run + "/pretrain/backbone.pt");
  const json again = run_protocol(dir + "/config.json", 2);
  EXPECT_NEAR(again["classifier"]["test"]["auroc"]["value"].get<double>(),
              metrics::auroc(labels, s), 1e-4);
  EXPECT_EQ(fs::last_write_time(run + "/classifier/model.pt"), model_time);
  EXPECT_EQ(util::read_text(run + "/classifier/model.pt"), model_bytes);
  EXPECT_EQ(util::read_text(run + "/pretrain/backbone.pt"), backbone_bytes);
}

}  // namespace
}  // namespace wristssl::study
