#pragma once
// Mixed precision across LibTorch versions: the autocast C++ API changed in 2.4 (device-generic
// set_autocast_enabled / set_autocast_dtype); 1.13 has per-device functions. One RAII guard hides it.

#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

namespace wristssl::util {

#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define WRISTSSL_AUTOCAST_DEVICE_API 1
#else
#define WRISTSSL_AUTOCAST_DEVICE_API 0
#endif

/// Enables (or disables) autocast to `dtype` on `device` for its scope; restores the previous state and
/// clears the cast-weight cache on exit (the cache must not outlive an optimizer step).
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device, c10::ScalarType dtype = c10::kBFloat16)
      : device_(device), enabled_(enabled) {
#if WRISTSSL_AUTOCAST_DEVICE_API
    prev_enabled_ = at::autocast::is_autocast_enabled(device_);
    prev_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_enabled(device_, enabled);
    at::autocast::set_autocast_dtype(device_, dtype);
#else
    if (device_ == c10::DeviceType::CUDA) {
      prev_enabled_ = at::autocast::is_enabled();
      prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      prev_enabled_ = at::autocast::is_cpu_enabled();
      prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
#endif
    if (enabled_) at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (enabled_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if WRISTSSL_AUTOCAST_DEVICE_API
    at::autocast::set_autocast_enabled(device_, prev_enabled_);
    at::autocast::set_autocast_dtype(device_, prev_dtype_);
#else
    if (device_ == c10::DeviceType::CUDA) {
      at::autocast::set_enabled(prev_enabled_);
      at::autocast::set_autocast_gpu_dtype(prev_dtype_);
    } else {
      at::autocast::set_cpu_enabled(prev_enabled_);
      at::autocast::set_autocast_cpu_dtype(prev_dtype_);
    }
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::kBFloat16;
};

}  // namespace wristssl::util
