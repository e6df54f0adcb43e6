#include "wristssl/util/fs.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_paths.h"

namespace wristssl::util {
namespace {

TEST(AtomicWrite, WritesCreatesFoldersAndLeavesNoTempFiles) {
  const std::string dir = testing::temp_dir("atomic");
  atomic_write(dir + "/a/b/out.txt", "hello");
  EXPECT_EQ(read_text(dir + "/a/b/out.txt"), "hello");
  atomic_write(dir + "/a/b/out.txt", "second");
  EXPECT_EQ(read_text(dir + "/a/b/out.txt"), "second");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/a/b")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_THROW(atomic_write("/proc/forbidden/x", "x"), std::runtime_error);
  EXPECT_THROW(read_text(dir + "/missing"), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::util
