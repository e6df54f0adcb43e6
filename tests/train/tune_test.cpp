#include "wristssl/train/tune.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_paths.h"
#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/threads.h"
#include "wristssl/util/tuned.h"

namespace wristssl::train {
namespace {

// Points the tune cache at a fresh folder for one test, and restores the environment after it.
class TuneCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    setenv("WRISTSSL_CACHE_DIR", dir_.c_str(), 1);
    unsetenv("WRISTSSL_TUNE");
  }
  void TearDown() override {
    unsetenv("WRISTSSL_CACHE_DIR");
    at::set_num_threads(util::available_cores());
  }
  std::string dir_;
};

TEST_F(TuneCache, TheChoiceIsTheFastestConfigurationMeasured) {
  TuneOptions o;
  o.size = 32;
  o.batch = 2;
  o.steps = 1;
  const nlohmann::json entry = run_tune(o);
  const bool native = util::has_native_bf16(c10::Device(c10::kCPU));
  // 1 and all cores (and half of them from 4 cores on), for fp32 and, with native bf16, for bf16 too.
  const size_t threads_tried = util::available_cores() >= 4 ? 3 : util::available_cores() > 1 ? 2 : 1;
  ASSERT_EQ(entry["tried"].size(), threads_tried * (native ? 2 : 1));
  double best[2] = {0, 0};
  int best_threads[2] = {0, 0};
  for (const auto& t : entry["tried"]) {
    const int p = t["precision"] == "bf16";
    if (t["views_per_s"].get<double>() > best[p]) best[p] = t["views_per_s"], best_threads[p] = t["threads"];
  }
  const int want = native && best[1] > 1.1 * best[0];  // bf16 only when it beats fp32 by 10%
  EXPECT_EQ(entry["choice"]["precision"], want ? "bf16" : "fp32");
  EXPECT_EQ(entry["choice"]["threads"], best_threads[want]);
  EXPECT_DOUBLE_EQ(entry["choice"]["views_per_s"].get<double>(), best[want]);

  // Stored under this machine's key, and what the defaults now resolve to.
  const nlohmann::json cache = nlohmann::json::parse(util::read_text(dir_ + "/tune.json"));
  EXPECT_EQ(cache["machines"][util::machine_key()], entry);
  const auto c = util::cached_choice();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->threads, best_threads[want]);
  EXPECT_EQ(c->bf16, want == 1);
}

TEST_F(TuneCache, DefaultsFollowTheStoredChoiceAndExplicitOptionsWin) {
  // A stored choice that no heuristic would make (1 thread, fp32), so following it is visible.
  util::store_tuning({{"choice", {{"threads", 1}, {"precision", "fp32"}, {"views_per_s", 1.0}, {"date", "2026-12-02"},
                                  {"why", "test"}}}});
  util::Compute c = util::setup_compute("test", 0, "auto");
  EXPECT_EQ(c.threads, 1);
  EXPECT_FALSE(c.bf16);
  EXPECT_EQ(at::get_num_threads(), 1);
  c = util::setup_compute("test", 2, "bf16");  // explicit options are honoured
  EXPECT_EQ(c.threads, 2);
  EXPECT_TRUE(c.bf16);
  // WRISTSSL_TUNE=off ignores the cache: all cores, bf16 where native.
  setenv("WRISTSSL_TUNE", "off", 1);
  c = util::setup_compute("test", 0, "auto");
  unsetenv("WRISTSSL_TUNE");
  EXPECT_EQ(c.threads, util::available_cores());
  EXPECT_EQ(c.bf16, util::has_native_bf16(c10::Device(c10::kCPU)));
  // Another machine's entry is not this machine's.
  const std::string path = dir_ + "/tune.json";
  nlohmann::json cache = nlohmann::json::parse(util::read_text(path));
  cache["machines"] = {{"another CPU | 64 cores | avx2 | libtorch 2.5.0", cache["machines"][util::machine_key()]}};
  util::atomic_write(path, cache.dump());
  EXPECT_FALSE(util::cached_choice().has_value());
}

TEST_F(TuneCache, OnlyLongRunsWithDefaultOptionsTuneFirst) {
  EXPECT_TRUE(should_tune_first(0, "auto", 2e5));
  EXPECT_FALSE(should_tune_first(0, "auto", 5e4));  // short: the heuristics will do
  EXPECT_FALSE(should_tune_first(2, "auto", 2e5));  // the user chose
  EXPECT_FALSE(should_tune_first(0, "bf16", 2e5));
  util::store_tuning({{"choice", {{"threads", 1}, {"precision", "fp32"}, {"date", "2026-12-02"}, {"why", "test"}}}});
  EXPECT_FALSE(should_tune_first(0, "auto", 2e5));  // already tuned
}

}  // namespace
}  // namespace wristssl::train
