#include "wristssl/metrics/metrics_command.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "test_paths.h"  // the test helper adds no include path for tests/
#include "wristssl/util/fs.h"

namespace wristssl::metrics {
namespace {

using nlohmann::json;

const json& reference() {
  static const json ref = json::parse(util::read_text(testing::repo_path("tests/fixtures/metrics/reference.json")));
  return ref;
}

std::string fixture_path(const std::string& name) { return testing::repo_path("tests/fixtures/metrics/" + name + ".csv"); }

// Runs the command on `csv_text` written to a temp file; returns the runtime_error message ("" if none).
std::string error_for(const std::string& csv_text, const std::string& name = "bad.csv") {
  const std::string path = testing::temp_dir("metrics_cmd") + "/" + name;
  util::atomic_write(path, csv_text);
  MetricsCommandOptions o;
  o.scores_csv = path;
  o.bootstrap = 50;
  std::ostringstream out;
  try {
    run_metrics_command(o, out);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(MetricsCommand, GivenThresholdTextAndJson) {
  const std::string dir = testing::temp_dir("metrics_cmd");
  MetricsCommandOptions o;
  o.scores_csv = fixture_path("ties_grouped");
  o.threshold = 0.3;
  o.json_out = dir + "/out/metrics.json";
  o.bootstrap = 200;
  o.seed = 11;
  std::ostringstream out;
  EXPECT_EQ(run_metrics_command(o, out), 0);
  const std::string text = out.str();
  EXPECT_NE(text.find("At threshold 0.3 (given"), std::string::npos) << text;
  EXPECT_NE(text.find("AUROC 0."), std::string::npos) << text;
  EXPECT_NE(text.find("(95% CI "), std::string::npos) << text;
  EXPECT_NE(text.find(o.json_out), std::string::npos) << text;

  const json& ref = reference()["files"]["ties_grouped"];
  const json j = json::parse(util::read_text(o.json_out));
  EXPECT_EQ(j["schema"], "wristssl.metrics/1");
  EXPECT_EQ(j["threshold"], 0.3);
  EXPECT_EQ(j["threshold_source"], "given");
  EXPECT_EQ(j["n_groups"], ref["n_groups"]);
  EXPECT_EQ(j["bootstrap"]["unit"], "group");
  EXPECT_EQ(j["bootstrap"]["seed"], 11);
  EXPECT_NEAR(j["metrics"]["auroc"]["value"].get<double>(), ref["auroc"].get<double>(), 1e-12);
  EXPECT_NEAR(j["metrics"]["auprc"]["value"].get<double>(), ref["auprc"].get<double>(), 1e-12);
  const json& at = ref["at_threshold"][1];  // threshold 0.3
  ASSERT_EQ(at["threshold"], 0.3);
  EXPECT_EQ(j["confusion"]["tp"], at["tp"]);
  EXPECT_EQ(j["confusion"]["fp"], at["fp"]);
  EXPECT_EQ(j["confusion"]["tn"], at["tn"]);
  EXPECT_EQ(j["confusion"]["fn"], at["fn"]);
  EXPECT_NEAR(j["metrics"]["specificity"]["hi"].get<double>(), at["specificity"]["hi"].get<double>(), 1e-9);

  // Same seed, same bytes.
  std::ostringstream again;
  run_metrics_command(o, again);
  EXPECT_EQ(json::parse(util::read_text(o.json_out)), j);
  EXPECT_EQ(again.str(), text);
}

TEST(MetricsCommand, DefaultThresholdIsSaidAndExtraColumnsIgnored) {
  MetricsCommandOptions o;
  o.scores_csv = fixture_path("ties_imbalanced");  // score,note,label with labels written 0.0 / 1.0
  o.bootstrap = 100;
  o.threshold_rule = "sensitivity:0.95";
  std::ostringstream out;
  run_metrics_command(o, out);
  const std::string text = out.str();
  const json& ref = reference()["files"]["ties_imbalanced"];
  EXPECT_NE(text.find("At threshold 0.5 (default"), std::string::npos) << text;
  EXPECT_NE(text.find("Images 250 (" + std::to_string(ref["n_positive"].get<int>()) + " fracture"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Threshold by sensitivity:0.95 on this data"), std::string::npos) << text;
  EXPECT_NE(text.find("250 images"), std::string::npos) << text;  // per-image bootstrap: no group column

  const ScoreTable t = read_scores_csv(o.scores_csv);
  EXPECT_TRUE(t.groups.empty());
  EXPECT_EQ(t.labels.size(), 250u);
}

TEST(MetricsCommand, BadFilesNameFileAndLine) {
  std::string e = error_for("label,prob\n1,0.5\n", "nocol.csv");
  EXPECT_NE(e.find("nocol.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("no column 'score'"), std::string::npos) << e;

  e = error_for("label,score\n1,0.5\n0,abc\n", "text.csv");
  EXPECT_NE(e.find("text.csv:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("'abc'"), std::string::npos) << e;

  e = error_for("label,score\n2,0.5\n0,0.1\n", "label.csv");
  EXPECT_NE(e.find("label.csv:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("not 0 or 1"), std::string::npos) << e;

  e = error_for("label,score\n1,nan\n0,0.1\n", "nan.csv");
  EXPECT_NE(e.find("nan.csv:2:"), std::string::npos) << e;

  e = error_for("label,score\n1,0.5\n1,\n", "empty_score.csv");
  EXPECT_NE(e.find("empty_score.csv:3:"), std::string::npos) << e;

  e = error_for("group,label,score\na,1,0.5\n,0,0.2\n", "group.csv");
  EXPECT_NE(e.find("group.csv:3: empty group"), std::string::npos) << e;

  e = error_for("label,score\n1,0.5\n1,0.7\n", "oneclass.csv");
  EXPECT_NE(e.find("oneclass.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("all 2 labels are 1"), std::string::npos) << e;

  e = error_for("label,score\n", "header_only.csv");
  EXPECT_NE(e.find("header_only.csv: no rows"), std::string::npos) << e;

  EXPECT_EQ(error_for("label,score\n1,0.5\n0, 0.25 \n", "ok.csv"), "") << "spaces around a number are fine";
}

TEST(MetricsCommand, VersusComparesTwoModelsOnTheSameImages) {
  // Model a ranks one negative above one positive: AUROC 3/4 (hand count: 3 of 4 pairs ordered);
  // model b ranks every pair: 1. The rows of b come in another order and are matched by path.
  const std::string dir = testing::temp_dir("metrics_versus");
  util::atomic_write(dir + "/a.csv", "path,label,score\nn1,0,0.1\nn2,0,0.4\np1,1,0.35\np2,1,0.8\n");
  util::atomic_write(dir + "/b.csv", "path,label,score\np2,1,0.9\nn1,0,0.2\np1,1,0.7\nn2,0,0.3\n");
  MetricsCommandOptions o;
  o.scores_csv = dir + "/a.csv";
  o.versus_csv = dir + "/b.csv";
  o.bootstrap = 200;
  o.json_out = dir + "/m.json";
  std::ostringstream out;
  run_metrics_command(o, out);
  const json j = json::parse(util::read_text(o.json_out));
  EXPECT_DOUBLE_EQ(j["versus"]["auroc"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(j["versus"]["auroc_versus"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["versus"]["difference"].get<double>(), -0.25);
  EXPECT_LE(j["versus"]["delong"]["lo"].get<double>(), -0.25);
  EXPECT_GE(j["versus"]["delong"]["hi"].get<double>(), -0.25);
  EXPECT_NE(out.str().find("Paired against"), std::string::npos) << out.str();
  // A row without a partner, or a label that disagrees, is named ("" if the file was accepted).
  auto versus_error = [&](const std::string& csv_text) -> std::string {
    util::atomic_write(dir + "/other.csv", csv_text);
    o.versus_csv = dir + "/other.csv";
    try {
      run_metrics_command(o, out);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  const std::string missing = versus_error("path,label,score\np2,1,0.9\nn1,0,0.2\np1,1,0.7\n");
  EXPECT_NE(missing.find("has no row for n2"), std::string::npos) << missing;
  const std::string disagree =
      versus_error("path,label,score\np2,1,0.9\nn1,0,0.2\np1,0,0.7\nn2,0,0.3\n");
  EXPECT_NE(disagree.find("disagree on the label of row 4 (p1)"), std::string::npos) << disagree;
}

TEST(MetricsCommand, BoxesOfSeveralFoldsAreMeasuredTogether) {
  const std::string dir = testing::temp_dir("metrics-boxes");
  // Fold 0: a hit and a fractured image whose box lies beside the fracture; fold 1: a hit and a
  // normal image with a false box. Pointing: 2 of 3.
  util::atomic_write(dir + "/f0.csv",
                     "path,group,label,source,x0,y0,x1,y1,score\n"
                     "a.png,g1,1,image,,,,,\n"
                     "a.png,g1,1,truth,0.4,0.6,0.5,0.7,\n"
                     "a.png,g1,1,box,0.4,0.6,0.5,0.7,0.9\n"
                     "b.png,g2,1,image,,,,,\n"
                     "b.png,g2,1,truth,0.1,0.1,0.2,0.2,\n"
                     "b.png,g2,1,box,0.3,0.3,0.4,0.4,0.8\n"
                     "b.png,g2,1,point,0.15,0.15,0.15,0.15,\n");
  util::atomic_write(dir + "/f1.csv",
                     "path,group,label,source,x0,y0,x1,y1,score\n"
                     "c.png,g3,1,image,,,,,\n"
                     "c.png,g3,1,truth,0.5,0.5,0.6,0.6,\n"
                     "c.png,g3,1,box,0.5,0.5,0.6,0.6,0.7\n"
                     "d.png,g4,0,image,,,,,\n"
                     "d.png,g4,0,box,0.1,0.1,0.2,0.2,0.95\n");
  MetricsCommandOptions o;
  o.boxes_csv = {dir + "/f0.csv", dir + "/f1.csv"};
  o.bootstrap = 200;
  o.json_out = dir + "/loc.json";
  std::ostringstream out;
  EXPECT_EQ(run_metrics_command(o, out), 0);
  EXPECT_NE(out.str().find("hit rate"), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(util::read_text(o.json_out))["localisation"];
  EXPECT_EQ(j["images"], 4);
  EXPECT_EQ(j["fractured_images"], 3);
  EXPECT_EQ(j["groups"], 4);
  EXPECT_DOUBLE_EQ(j["hit_rate"]["value"].get<double>(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(j["point_hit_rate"]["value"].get<double>(), 1.0);  // b.png's point hits
  // Ranked: 0.95 FP, 0.9 TP, 0.8 FP, 0.7 TP; precision envelope 0.5 up to recall 2/3 (67 points,
  // 0.00 ... 0.66), nothing beyond: AP = 67 * 0.5 / 101.
  EXPECT_NEAR(j["average_precision"]["value"].get<double>(), 67 * 0.5 / 101, 1e-12);
  // The same image in two files is refused; so is a bad row, with file and line.
  util::atomic_write(dir + "/dup.csv",
                     "path,group,label,source,x0,y0,x1,y1,score\nc.png,g3,1,image,,,,,\n");
  o.boxes_csv = {dir + "/f1.csv", dir + "/dup.csv"};
  EXPECT_THROW(run_metrics_command(o, out), std::runtime_error);
  util::atomic_write(dir + "/bad.csv",
                     "path,group,label,source,x0,y0,x1,y1,score\nx.png,g,1,image,,,,,\nx.png,g,1,"
                     "box,0.1,a,0.2,0.2,1\n");
  o.boxes_csv = {dir + "/bad.csv"};
  try {
    run_metrics_command(o, out);
    ADD_FAILURE() << "a bad row was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:3"), std::string::npos) << e.what();
  }
}

TEST(MetricsCommand, BadOptions) {
  std::ostringstream out;
  MetricsCommandOptions o;
  EXPECT_THROW(run_metrics_command(o, out), std::invalid_argument);
  o.scores_csv = fixture_path("tiny");
  o.threshold_rule = "best";
  EXPECT_THROW(run_metrics_command(o, out), std::invalid_argument);
  o.threshold_rule = "youden";
  o.bootstrap = 0;
  EXPECT_THROW(run_metrics_command(o, out), std::invalid_argument);
  o.bootstrap = 10;
  o.threshold = std::nan("");
  EXPECT_THROW(run_metrics_command(o, out), std::invalid_argument);
  o.threshold.reset();
  o.scores_csv = "/nonexistent/scores.csv";
  EXPECT_THROW(run_metrics_command(o, out), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::metrics
