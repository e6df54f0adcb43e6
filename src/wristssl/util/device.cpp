#include "wristssl/util/device.h"

#include "wristssl/util/allocator.h"
#include "wristssl/util/threads.h"
#include "wristssl/util/tuned.h"

#include <torch/cuda.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace wristssl::util {

c10::Device best_device() { return torch::cuda::is_available() ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU); }

std::string cpuinfo_field(const std::string& field) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) {
      const size_t colon = line.find(':');
      const size_t value = colon == std::string::npos ? std::string::npos : line.find_first_not_of(" \t", colon + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

bool has_native_bf16(const c10::Device& device) {
  if (device.is_cuda()) return true;  // LibTorch with CUDA 11+ on sm80+ (Ampere, Hopper); older GPUs emulate
  const std::string flags = " " + cpuinfo_field("flags") + " ";
  return flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_bf16 ") != std::string::npos;
}

bool use_bf16(const std::string& precision, const c10::Device& device) {
  if (precision == "fp32") return false;
  if (precision == "bf16") return true;
  if (precision == "auto") return has_native_bf16(device);
  throw std::runtime_error("--precision must be auto, fp32 or bf16, got '" + precision + "'");
}

std::string describe(const c10::Device& device, bool bf16, int threads) {
  std::ostringstream s;
  s << "device " << device.str() << ", " << (bf16 ? "bf16 autocast" : "fp32") << ", " << threads << " thread(s)";
  return s.str();
}

Compute setup_compute(const std::string& who, int threads, const std::string& precision) {
  Compute c;
  const std::string allocator = configure_allocator();
  c.device = best_device();
  c.bf16 = use_bf16(precision, c.device);  // checks the name
  // The defaults (0 threads, "auto") take what `wristssl tune` measured on this machine, if it did.
  std::string chosen;
  if (!c.device.is_cuda() && (threads == 0 || precision == "auto")) {
    if (const std::optional<TunedChoice> t = cached_choice()) {
      if (threads == 0) threads = t->threads;
      if (precision == "auto") c.bf16 = t->bf16;
      chosen = "; defaults as tuned on this machine " + t->date + " (" + t->why + ")";
    } else {
      chosen = "; this machine is not tuned: all cores, bf16 where native (`wristssl tune` measures)";
    }
  }
  c.threads = set_threads(threads);
  std::fprintf(stderr, "%s: %s%s; allocator: %s\n", who.c_str(), describe(c.device, c.bf16, c.threads).c_str(),
               chosen.c_str(), allocator.c_str());
  return c;
}

}  // namespace wristssl::util
