#include "wristssl/train/tune.h"
#include "wristssl/util/audit.h"  // utc_timestamp

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "wristssl/losses/nt_xent.h"
#include "wristssl/models/simclr.h"
#include "wristssl/util/allocator.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/device.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/threads.h"
#include "wristssl/util/tuned.h"

namespace wristssl::train {
namespace {

using Clock = std::chrono::steady_clock;

// Views per second of the SimCLR training step, channels-last, on a fixed batch.
double step_rate(int threads, bool bf16, const TuneOptions& o) {
  at::set_num_threads(threads);
  torch::manual_seed(0);
  TimedSimclrStep train_step(bf16, /*channels_last=*/true);
  const torch::Tensor v1 = torch::randn({o.batch, 1, o.size, o.size}), v2 = torch::randn({o.batch, 1, o.size, o.size});
  auto step = [&] { train_step(v1, v2); };
  step();  // untimed: allocations, oneDNN primitives
  const auto t0 = Clock::now();
  for (int i = 0; i < o.steps; ++i) step();
  return 2.0 * o.batch * o.steps / std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

TimedSimclrStep::TimedSimclrStep(bool bf, bool cl) : bf16(bf), channels_last(cl) {
  if (cl)
    util::to_channels_last(*model);  // in place: the optimizer's parameters stay the same tensors
  model->train();
}

void TimedSimclrStep::operator()(const torch::Tensor& v1, const torch::Tensor& v2) {
  torch::Tensor x = torch::cat({v1, v2}, 0);
  if (channels_last) x = util::channels_last(x);
  torch::Tensor z;
  {
    const util::AutocastGuard ac(bf16, c10::kCPU);
    z = model->forward(x);
  }
  const int64_t n = v1.size(0);
  torch::Tensor loss = losses::nt_xent(z.narrow(0, 0, n), z.narrow(0, n, n), 0.5);
  opt.zero_grad();
  loss.backward();
  opt.step();
  loss.item<double>();
}

bool should_tune_first(int threads, const std::string& precision, double views, double min_views) {
  const char* env = std::getenv("WRISTSSL_TUNE");
  if (env != nullptr && std::string(env) == "off") return false;
  if (threads != 0 || precision != "auto" || util::best_device().is_cuda()) return false;
  return views >= min_views && !util::cached_choice();
}

nlohmann::json run_tune(const TuneOptions& o) {
  if (o.size < 32 || o.batch < 2 || o.steps < 1) throw std::invalid_argument("tune: --size >= 32, --batch >= 2, --steps >= 1");
  util::configure_allocator();
  const int cores = util::available_cores();
  const bool native = util::has_native_bf16(c10::Device(c10::kCPU));
  std::vector<int> thread_counts = {1};
  if (cores >= 4) thread_counts.push_back(cores / 2);
  if (cores > 1) thread_counts.push_back(cores);
  std::vector<bool> precisions = {false};
  if (native) precisions.push_back(true);
  std::fprintf(stderr, "tune: %s\ntune: training step, %d px, batch %d (x2 views), 1 + %d steps per configuration\n",
               util::machine_key().c_str(), o.size, o.batch, o.steps);
  nlohmann::json tried = nlohmann::json::array();
  double best = -1, best_fp32 = -1, best_bf16 = -1;
  int best_threads = 1, best_fp32_threads = 1, best_bf16_threads = 1;
  for (bool bf16 : precisions) {
    for (int t : thread_counts) {
      const double r = step_rate(t, bf16, o);
      std::fprintf(stderr, "tune:   %-5s %2d thread(s)  %7.1f views/s\n", bf16 ? "bf16" : "fp32", t, r);
      tried.push_back({{"threads", t}, {"precision", bf16 ? "bf16" : "fp32"}, {"views_per_s", r}});
      double& b = bf16 ? best_bf16 : best_fp32;
      int& bt = bf16 ? best_bf16_threads : best_fp32_threads;
      if (r > b) b = r, bt = t;
    }
  }
  // bf16 only where it pays: it costs precision, so it must beat fp32 by 10%.
  const bool bf16 = native && best_bf16 > 1.1 * best_fp32;
  best = bf16 ? best_bf16 : best_fp32;
  best_threads = bf16 ? best_bf16_threads : best_fp32_threads;
  char why[256];
  if (native) {
    std::snprintf(why, sizeof(why), "%s %d thread(s) %.1f views/s; best %s %.1f (%d thread(s))", bf16 ? "bf16" : "fp32",
                  best_threads, best, bf16 ? "fp32" : "bf16", bf16 ? best_fp32 : best_bf16,
                  bf16 ? best_fp32_threads : best_bf16_threads);
  } else {
    std::snprintf(why, sizeof(why), "fp32 %d thread(s) %.1f views/s; no native bf16", best_threads, best);
  }
  nlohmann::json entry = {{"date", util::utc_timestamp()},
                          {"size", o.size},
                          {"batch", o.batch},
                          {"steps", o.steps},
                          {"tried", tried},
                          {"choice",
                           {{"threads", best_threads},
                            {"precision", bf16 ? "bf16" : "fp32"},
                            {"views_per_s", best},
                            {"date", util::utc_timestamp().substr(0, 10)},
                            {"why", why}}}};
  at::set_num_threads(best_threads);
  std::fprintf(stderr, "tune: chose %s\n", why);
  if (o.store) {
    util::store_tuning(entry);
    std::fprintf(stderr, "tune: stored in %s; commands with the default --threads 0 and --precision auto use it\n",
                 util::tune_cache_path().c_str());
  }
  return entry;
}

}  // namespace wristssl::train
