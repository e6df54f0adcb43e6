#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "wristssl/train/run_bundle.h"

namespace wristssl::cli {
namespace {

TEST(CliBundle, RunMembersOrModelAndTheStorage) {
  const BundleArgs r = parse_bundle({"--run", "runs/c", "--name", "wrist"});
  EXPECT_EQ(r.run, "runs/c");
  EXPECT_EQ(r.name, "wrist");
  EXPECT_EQ(r.storage, "float32");
  const BundleArgs e =
      parse_bundle({"--members", "a.wristssl", "b.wristssl", "c.wristssl", "--out", "e.wristssl"});
  EXPECT_EQ(e.members, (std::vector<std::string>{"a.wristssl", "b.wristssl", "c.wristssl"}));
  EXPECT_EQ(e.out, "e.wristssl");
  const BundleArgs h =
      parse_bundle({"--model", "m.wristssl", "--storage", "float16", "--out", "h.wristssl"});
  EXPECT_EQ(h.model, "m.wristssl");
  EXPECT_EQ(h.storage, "float16");
}

TEST(CliBundle, RefusesTwoSourcesAndAnUnknownStorage) {
  EXPECT_THROW(parse_bundle({"--run", "r", "--model", "m"}), CLI::ExcludesError);
  EXPECT_THROW(parse_bundle({"--members", "a", "b", "--run", "r"}), CLI::ExcludesError);
  EXPECT_THROW(parse_bundle({"--model", "m", "--storage", "int8"}), CLI::ValidationError);
  // The library says what is missing when nothing or no --out is given.
  try {
    train::write_requested_bundle(parse_bundle({}));
    FAIL() << "a bundle with no source was written";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exactly one of --run"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::write_requested_bundle(parse_bundle({"--model", "m.wristssl"})),
               std::runtime_error);
}

}  // namespace
}  // namespace wristssl::cli
