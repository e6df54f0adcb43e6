#pragma once
// The tests' one way to seed. A test that draws random numbers derives its fixture from Seeded:
// LibTorch's CPU generator and the fixture's own rng() start from kDefaultSeed before every test
// (so no test depends on what ran before it in the same binary), and seed(n) restarts both from a
// seed the test states.

#include <gtest/gtest.h>
#include <torch/utils.h>  // torch::manual_seed

#include <cstdint>
#include <random>

namespace wristssl::testing {

class Seeded : public ::testing::Test {
 protected:
  static constexpr uint64_t kDefaultSeed = 0;

  void SetUp() override { seed(kDefaultSeed); }

  /// Restarts LibTorch's CPU generator and rng() from `s`.
  void seed(uint64_t s) {
    torch::manual_seed(s);
    rng_.seed(s);
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_{kDefaultSeed};
};

}  // namespace wristssl::testing
