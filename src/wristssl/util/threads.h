#pragma once
// LibTorch defaults to one intra-op thread on this platform; every command sets it explicitly.

namespace wristssl::util {

/// Sets LibTorch's intra-op threads to `n` (0 = all cores) and returns the number set.
int set_threads(int n);

/// Number of cores this process may use.
int available_cores();

}  // namespace wristssl::util
