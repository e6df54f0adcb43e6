#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "commands.h"
#include "wristssl/study/evaluate.h"

namespace wristssl::cli {
namespace {

using testing::words;

TEST(CliEvaluate, InternalRunAndPart) {
  const study::EvaluateOptions o = parse_evaluate({"--run", "runs/c", "--part", "val"});
  EXPECT_EQ(o.run, "runs/c");
  EXPECT_EQ(o.part, "val");
  EXPECT_EQ(o.model, "");
  EXPECT_EQ(o.data.data, "");  // --data is not required here
  EXPECT_EQ(o.data.layout, data::Layout::kAuto);
  EXPECT_EQ(o.cache_dir, ".wristssl-cache");
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_EQ(o.bootstrap, 2000);
  EXPECT_EQ(o.gallery, 8);
  EXPECT_TRUE(o.report);
}

TEST(CliEvaluate, ExternalModelOnADataset) {
  const study::EvaluateOptions o = parse_evaluate(
      words("--model m.wristssl --data labels.csv --layout manifest --path-column file "
            "--label-column fractured --group-column patient --where hand=1 --where view=ap "
            "--exclude-cast --negative-class ok --positive-class broken --out eval --cache-dir "
            "cache --precision bf16 --bootstrap 100 --gallery 0 --no-report"));
  EXPECT_EQ(o.model, "m.wristssl");
  EXPECT_EQ(o.data.data, "labels.csv");
  EXPECT_EQ(o.data.layout, data::Layout::kManifest);
  EXPECT_EQ(o.data.path_column, "file");
  EXPECT_EQ(o.data.label_column, "fractured");
  EXPECT_EQ(o.data.group_column, "patient");
  EXPECT_EQ(o.data.where, (std::vector<std::string>{"hand=1", "view=ap"}));
  EXPECT_TRUE(o.data.exclude_cast);
  EXPECT_FALSE(o.data.exclude_metal);
  EXPECT_EQ(o.data.negative_class, "ok");
  EXPECT_EQ(o.data.positive_class, "broken");
  EXPECT_EQ(o.out, "eval");
  EXPECT_EQ(o.cache_dir, "cache");
  EXPECT_EQ(o.precision, "bf16");
  EXPECT_EQ(o.bootstrap, 100);
  EXPECT_EQ(o.gallery, 0);
  EXPECT_FALSE(o.report);
}

TEST(CliEvaluate, BadValuesAreRefused) {
  EXPECT_THROW(parse_evaluate({"--run", "r", "--bootstrap", "lots"}), CLI::ParseError);
  EXPECT_THROW(parse_evaluate({"--run", "r", "--report"}), CLI::ParseError);
  EXPECT_THROW(parse_evaluate({"--model", "m", "--data", "d", "--layout", "shelves"}),
               std::runtime_error);
}

}  // namespace
}  // namespace wristssl::cli
