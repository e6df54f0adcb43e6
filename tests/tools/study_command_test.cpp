#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "commands.h"
#include "test_paths.h"  // the test helper adds no include path for tests/
#include "wristssl/study/study.h"
#include "wristssl/util/fs.h"

namespace wristssl::cli {
namespace {

std::string repo_config() { return testing::repo_path("configs/study_fracatlas.json"); }

std::string repo_config_out() {
  return nlohmann::json::parse(util::read_text(repo_config())).at("out").get<std::string>();
}

TEST(CliStudy, QuickIsThePreset) {
  EXPECT_EQ(parse_study({"--quick"}).out, "runs/study-quick");
  EXPECT_EQ(parse_study({"--quick"}).out, study::quick_study_config().out);
}

TEST(CliStudy, OutOverridesTheQuickPreset) {
  EXPECT_EQ(parse_study({"--quick", "--out", "runs/mine"}).out, "runs/mine");
  EXPECT_EQ(parse_study({"--out=runs/mine", "--quick"}).out, "runs/mine");
}

TEST(CliStudy, ConfigIsReadAndOutOverridesIt) {
  ASSERT_EQ(repo_config_out(), "runs/study-fracatlas");
  EXPECT_EQ(parse_study({"--config", repo_config()}).out, "runs/study-fracatlas");
  EXPECT_EQ(parse_study({"--config", repo_config(), "--out", "elsewhere"}).out, "elsewhere");
}

TEST(CliStudy, ConfigWinsOverQuick) {
  EXPECT_EQ(parse_study({"--quick", "--config", repo_config()}).out, "runs/study-fracatlas");
}

TEST(CliStudy, NeedsConfigOrQuick) {
  try {
    parse_study({"--out", "runs/x"});
    FAIL() << "a study without --config or --quick was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "study needs --config FILE or --quick");
  }
}

TEST(CliStudy, BadArgumentsAreRefused) {
  EXPECT_THROW(parse_study({"--quick", "--fast"}), CLI::ParseError);
  EXPECT_THROW(parse_study({"--config"}), CLI::ParseError);
  EXPECT_ANY_THROW(parse_study({"--config", testing::temp_dir("cli_study") + "/missing.json"}));
}

}  // namespace
}  // namespace wristssl::cli
