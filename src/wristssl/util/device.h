#pragma once
// Device and precision choice: CUDA when LibTorch has it, bf16 autocast where the hardware has native
// bf16 (CPUs with AVX512_BF16 or AMX; GPUs of compute capability 8.0 and up), fp32 elsewhere.

#include <c10/core/Device.h>

#include <string>

namespace wristssl::util {

/// "cuda" when available, else "cpu".
c10::Device best_device();

/// The value of the first /proc/cpuinfo line whose name starts with `field` ("model name", "flags"); "" if none.
std::string cpuinfo_field(const std::string& field);

/// True when this machine computes bf16 natively on `device`.
bool has_native_bf16(const c10::Device& device);

/// Resolves "auto", "fp32" or "bf16" for `device`; throws on other names. "bf16" is honoured even without
/// native support (slow, emulated), "auto" picks bf16 only with native support.
bool use_bf16(const std::string& precision, const c10::Device& device);

/// One line describing the device and precision for logs.
std::string describe(const c10::Device& device, bool bf16, int threads);

/// Where and how a command computes.
struct Compute {
  int threads = 1;
  c10::Device device = c10::kCPU;
  bool bf16 = false;
};

/// Sets LibTorch's threads (0 = all cores), picks the device and resolves `precision` for it, and logs
/// "<who>: device ..., precision, threads" to stderr. Every training / evaluation command starts here.
Compute setup_compute(const std::string& who, int threads, const std::string& precision);

}  // namespace wristssl::util
