#include "wristssl/util/threads.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <thread>

namespace wristssl::util {

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int set_threads(int n) {
  const int threads = n > 0 ? n : available_cores();
  at::set_num_threads(threads);
  return threads;
}

}  // namespace wristssl::util
