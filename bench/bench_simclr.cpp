// SimCLR training throughput on this machine: prints a table of figures for README.
//   build/bench/wristssl_bench_simclr [--sizes 224,512] [--batch 32] [--steps 6] [--precision all|fp32|bf16]
//     [--threads N] [--profile PREFIX]  (PREFIX-SIZE-PREC[-cl].json: one model step as a Chrome trace)
// Measures: matrix-multiply peak (fp32, bf16), model-only training images/s (synthetic tensors), the data
// pipeline alone (cache -> augment -> batch), end-to-end pretraining (pipeline + model), the FLOP rate
// reached, and peak resident memory.
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#include "wristssl/data/cache.h"
#include "wristssl/data/dataset.h"
#include "wristssl/data/loader.h"
#include "wristssl/data/source.h"
#include "wristssl/losses/nt_xent.h"
#include "wristssl/models/simclr.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/allocator.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/device.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/threads.h"

namespace {

using namespace wristssl;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// Forward FLOPs (2 x multiply-adds) of the 1-channel ResNet-18 backbone + MLP head at side `s`.
double resnet18_forward_flops(int s) {
  double flops = 0;
  auto conv = [&](int cin, int cout, int k, int out) { flops += 2.0 * cin * cout * k * k * out * out; };
  int h = (s + 1) / 2;  // conv1 stride 2
  conv(1, 64, 7, h);
  h = (h + 1) / 2;  // max pool
  const int widths[4] = {64, 128, 256, 512};
  int cin = 64;
  for (int l = 0; l < 4; ++l) {
    const int c = widths[l];
    if (l > 0) h = (h + 1) / 2;
    conv(cin, c, 3, h);
    conv(c, c, 3, h);
    if (cin != c) conv(cin, c, 1, h);
    conv(c, c, 3, h);
    conv(c, c, 3, h);
    cin = c;
  }
  flops += 2.0 * (512 * 512 + 512 * 128);
  return flops;
}

double matmul_gflops(torch::Dtype dtype) {
  const int64_t n = 2048;
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  torch::matmul(a, b);
  const auto t0 = Clock::now();
  int reps = 0;
  while (seconds_since(t0) < 2.0) {
    torch::matmul(a, b);
    ++reps;
  }
  return 2.0 * n * n * n * reps / seconds_since(t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string allocator = util::configure_allocator();
  std::vector<int> sizes = {224, 512};
  int batch = 32, steps = 6, threads = 0;
  std::string precision = "all", profile;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--sizes") {
      sizes.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) sizes.push_back(std::stoi(t));
    } else if (a == "--batch") {
      batch = std::stoi(v);
    } else if (a == "--steps") {
      steps = std::stoi(v);
    } else if (a == "--precision") {
      precision = v;
    } else if (a == "--profile") {
      profile = v;
    } else if (a == "--threads") {
      threads = std::stoi(v);
    }
  }
  threads = util::set_threads(threads);
  const bool native = util::has_native_bf16(c10::Device(c10::kCPU));
  std::printf("wristssl SimCLR benchmark: %d thread(s), native bf16: %s, batch %d (x2 views), %d timed steps\n",
              threads, native ? "yes" : "no", batch, steps);
  std::printf("allocator: %s\n", allocator.c_str());
  const double peak32 = matmul_gflops(torch::kFloat), peak16 = matmul_gflops(torch::kBFloat16);
  std::printf("matmul 2048^3: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n", peak32, peak16);

  // Pixels for the pipeline: the bundled FracAtlas sample through the real cache.
  data::DatasetOptions dopt;
  dopt.data = std::string(WRISTSSL_SOURCE_DIR) + "/samples/fracatlas/images";
  std::vector<std::string> precisions;
  if (precision == "all" || precision == "fp32") precisions.push_back("fp32");
  if (precision == "all" || precision == "bf16") precisions.push_back("bf16");
  std::printf("\n%-5s %-5s %-13s %12s %12s %12s %9s %10s %9s\n", "size", "prec", "memory format", "model img/s",
              "e2e img/s", "data img/s", "e2e/model", "GFLOP/s", "%peak");
  for (int s : sizes) {
    data::CacheOptions copt;
    copt.dir = "/tmp/wristssl-bench-cache";
    copt.image_size = s;
    data::LoadedData loaded = data::load_pixels(dopt, copt);
    std::vector<int> items;
    for (size_t i = 0; i < loaded.pixels->size(); ++i) items.push_back(static_cast<int>(i));
    data::LoaderOptions lo;
    lo.batch_size = batch;
    lo.augment = data::AugmentOptions::xray(s);
    // Data pipeline alone (both views), 1 worker per core left to it.
    double data_rate;
    {
      data::BatchLoader loader(*loaded.pixels, items, {}, lo);
      int64_t imgs = 0;
      const auto t0 = Clock::now();
      for (int e = 0; imgs < 4 * batch; ++e) {
        loader.start_epoch(e);
        while (auto b = loader.next()) imgs += b->views[0].size(0);
      }
      data_rate = imgs / seconds_since(t0);
    }
    const double train_flops = 3.0 * resnet18_forward_flops(s);  // forward + backward (2x)
    for (const std::string& p : precisions) {
      for (bool cl : {false, true}) {
        train::TimedSimclrStep step(p == "bf16", cl);
        const torch::Tensor v1 = torch::randn({batch, 1, s, s}), v2 = torch::randn({batch, 1, s, s});
        step(v1, v2);  // warm-up: allocations, oneDNN primitives
        auto t0 = Clock::now();
        for (int i = 0; i < steps; ++i) step(v1, v2);
        const double model_rate = 2.0 * batch * steps / seconds_since(t0);  // views per second
        if (!profile.empty()) {  // one more step under the LibTorch profiler: a Chrome trace per configuration
          const torch::autograd::profiler::RecordProfile rp(profile + "-" + std::to_string(s) + "-" + p +
                                                            (cl ? "-cl" : "") + ".json");
          step(v1, v2);
        }
        data::BatchLoader loader(*loaded.pixels, items, {}, lo);
        int done = 0;
        t0 = Clock::now();
        for (int e = 0; done < steps; ++e) {
          loader.start_epoch(e);
          while (done < steps) {
            auto b = loader.next();
            if (!b) break;
            step(b->views[0], b->views[1]);
            ++done;
          }
        }
        const double e2e_rate = 2.0 * batch * steps / seconds_since(t0);
        const double gflops = model_rate * train_flops / 1e9;
        std::printf("%-5d %-5s %-13s %12.1f %12.1f %12.1f %8.0f%% %10.0f %8.0f%%\n", s, p.c_str(),
                    cl ? "channels-last" : "contiguous", model_rate, e2e_rate, 2 * data_rate,
                    100 * e2e_rate / model_rate, gflops, 100 * gflops / (p == "bf16" ? peak16 : peak32));
        std::fflush(stdout);
      }
    }
  }
  std::printf("\nimg/s counts augmented views (2 per image and step). Peak resident memory: %.0f MiB\n", peak_rss_mib());
  return 0;
}
