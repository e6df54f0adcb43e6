#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"
#include "wristssl/metrics/metrics_command.h"

namespace wristssl::cli {
namespace {

TEST(CliMetrics, FlagsSetTheOptions) {
  const metrics::MetricsCommandOptions o =
      parse_metrics({"--scores", "scores.csv", "--threshold", "0.3", "--json", "m.json",
                     "--bootstrap", "500", "--seed", "7", "--threshold-rule", "sensitivity:0.9"});
  EXPECT_EQ(o.scores_csv, "scores.csv");
  ASSERT_TRUE(o.threshold.has_value());
  EXPECT_DOUBLE_EQ(*o.threshold, 0.3);
  EXPECT_EQ(o.json_out, "m.json");
  EXPECT_EQ(o.bootstrap, 500);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.threshold_rule, "sensitivity:0.9");
}

TEST(CliMetrics, NoThresholdLeavesItUnset) {
  const metrics::MetricsCommandOptions o = parse_metrics({"--scores", "s.csv"});
  EXPECT_FALSE(o.threshold.has_value());
  EXPECT_EQ(o.bootstrap, 2000);
  EXPECT_EQ(o.threshold_rule, "youden");
}

TEST(CliMetrics, BoxesFilesAreRepeatableAndNeedNoScores) {
  const metrics::MetricsCommandOptions o =
      parse_metrics({"--boxes", "fold0/boxes_test.csv", "--boxes", "fold1/boxes_test.csv"});
  EXPECT_EQ(o.boxes_csv,
            (std::vector<std::string>{"fold0/boxes_test.csv", "fold1/boxes_test.csv"}));
  EXPECT_TRUE(o.scores_csv.empty());
}

TEST(CliMetrics, MissingOrBadValuesAreRefused) {
  EXPECT_THROW(parse_metrics({"--scores", "s.csv", "--threshold", "half"}), CLI::ParseError);
}

}  // namespace
}  // namespace wristssl::cli
