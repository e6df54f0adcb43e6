#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"

namespace wristssl::cli {
namespace {

TEST(CliScan, DataLayoutAndJson) {
  const ScanArgs a =
      parse_scan({"--data", "dataset.csv", "--layout", "grazpedwri", "--image-dir", "images",
                  "--exclude-metal", "--exclude-uncertain", "--json", "summary.json"});
  EXPECT_EQ(a.data.data, "dataset.csv");
  EXPECT_EQ(a.data.layout, data::Layout::kGrazpedwri);
  EXPECT_EQ(a.data.image_dirs, std::vector<std::string>{"images"});
  EXPECT_FALSE(a.data.exclude_cast);
  EXPECT_TRUE(a.data.exclude_metal);
  EXPECT_TRUE(a.data.exclude_uncertain);
  EXPECT_EQ(a.json, "summary.json");
}

TEST(CliScan, DataIsRequired) {
  EXPECT_THROW(parse_scan({"--json", "s.json"}), CLI::RequiredError);
  EXPECT_EQ(parse_scan({"--data", "d"}).data.layout, data::Layout::kAuto);
}

}  // namespace
}  // namespace wristssl::cli
