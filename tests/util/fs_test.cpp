#include "wristssl/util/fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

TEST(AtomicWrite, LeftoversOfAKilledWriteAreRemovedAndNothingElse) {
  const std::string dir = testing::temp_dir("atomic_leftovers");
  for (const char* name : {".a.dcm.tmpAbC123", ".b.attempts.tmpzz99Q0", "a.dcm", ".hidden", "x.tmp",
                           ".c.tmpXY", "d.tmpAbC123"})
    std::ofstream(dir + "/" + name) << "x";
  EXPECT_EQ(remove_atomic_write_leftovers(dir), 2);
  for (const char* gone : {".a.dcm.tmpAbC123", ".b.attempts.tmpzz99Q0"})
    EXPECT_FALSE(std::filesystem::exists(dir + "/" + gone)) << gone;
  for (const char* kept : {"a.dcm", ".hidden", "x.tmp", ".c.tmpXY", "d.tmpAbC123"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + kept)) << kept;
  EXPECT_EQ(remove_atomic_write_leftovers(dir + "/missing"), 0);
}

}  // namespace
}  // namespace wristssl::util
