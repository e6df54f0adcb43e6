#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "wristssl/infer/predict.h"

namespace wristssl::cli {
namespace {

TEST(CliPredict, FlagsAndInputsSetTheOptions) {
  const infer::PredictOptions o =
      parse_predict({"--model", "model.wristssl", "a.png", "scans/", "--csv", "out.csv", "--json",
                     "out.json", "--heatmaps", "cams", "--dicom-out", "sr", "--uid-root", "1.2.3",
                     "--batch-size", "4", "--precision", "bf16", "b.dcm"});
  EXPECT_EQ(o.model, "model.wristssl");
  EXPECT_EQ(o.inputs, (std::vector<std::string>{"a.png", "scans/", "b.dcm"}));
  EXPECT_EQ(o.csv, "out.csv");
  EXPECT_EQ(o.json, "out.json");
  EXPECT_EQ(o.heatmaps, "cams");
  EXPECT_EQ(o.dicom_out, "sr");
  EXPECT_EQ(o.uid_root, "1.2.3");
  EXPECT_EQ(o.batch_size, 4);
  EXPECT_EQ(o.precision, "bf16");
}

TEST(CliPredict, Defaults) {
  const infer::PredictOptions o = parse_predict({"--model", "m", "x.png"});
  EXPECT_EQ(o.inputs, std::vector<std::string>{"x.png"});
  EXPECT_EQ(o.csv, "");
  EXPECT_EQ(o.json, "");
  EXPECT_EQ(o.uid_root, "2.25");
  EXPECT_EQ(o.batch_size, 0);
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_EQ(o.threads, 0);  // set from the global --threads when the command runs
}

TEST(CliPredict, MissingOrBadValuesAreRefused) {
  // No --model: the shipped model (models::model_or_shipped) when the command runs.
  EXPECT_EQ(parse_predict({"x.png"}).model, "");
  EXPECT_THROW(parse_predict({"--model", "m"}), CLI::RequiredError);
  EXPECT_THROW(parse_predict({"--model", "m", "x.png", "--batch-size", "big"}), CLI::ParseError);
  EXPECT_THROW(parse_predict({"--model", "m", "x.png", "--heatmap", "cams"}), CLI::ParseError);
}

}  // namespace
}  // namespace wristssl::cli
