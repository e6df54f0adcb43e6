#include "wristssl/util/allocator.h"
#include "wristssl/util/fs.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <string>

namespace {

using wristssl::util::active_allocator;
using wristssl::util::configure_allocator;

bool mapped(const std::string& library) {
  return wristssl::util::read_text("/proc/self/maps").find(library) != std::string::npos;
}

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// The build says which allocator the programs must get (CMake: WRISTSSL_TCMALLOC and whether it was found);
// /proc/self/maps says independently whether tcmalloc is in the process at all.
TEST(Allocator, TheProgramsGetTheAllocatorTheBuildChose) {
  const std::string description = configure_allocator();
#if WRISTSSL_EXPECT_TCMALLOC
  EXPECT_TRUE(mapped("libtcmalloc")) << "tcmalloc is not loaded in this process";
  EXPECT_EQ(active_allocator(), "tcmalloc");
  EXPECT_EQ(description, "tcmalloc");
#else
  EXPECT_FALSE(mapped("libtcmalloc"));
  EXPECT_EQ(active_allocator(), "glibc");
  EXPECT_NE(description.find("glibc"), std::string::npos) << description;
#endif
}

// What the setting is for: the next training step's 64 MB activation reuses the memory the last one freed,
// instead of mapping fresh pages and faulting each of them in (16,384 faults of 4 KiB pages). With plain
// glibc the second fill below faults in every page again.
TEST(Allocator, ALargeTensorFreedAndMadeAgainFaultsNoNewPages) {
  configure_allocator();
  const int64_t n = 16 * 1024 * 1024;  // floats: 64 MiB
  const long pages = n * 4 / 4096;
  { const torch::Tensor warm = torch::ones({n}); }
  const long before = minor_faults();
  {
    const torch::Tensor again = torch::ones({n});
    EXPECT_EQ(again[n - 1].item<float>(), 1.0f);
  }
  const long faults = minor_faults() - before;
  EXPECT_LT(faults, pages / 10) << faults << " page faults for a " << pages << "-page tensor made a second time";
}

}  // namespace
