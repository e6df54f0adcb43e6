#include "wristssl/util/stop_signal.h"

#include <csignal>

namespace wristssl::util {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

// Async-signal-safe: lock-free atomics only.
extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  g_stop = true;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  // Restart interrupted system calls (reads in the loaders, accept in the services): the signal is
  // only a request, polled where stopping is safe.
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop.load(); }

const std::atomic<bool>& stop_flag() { return g_stop; }

int take_stop_signal() { return g_signal.exchange(0); }

void request_stop(bool value) { g_stop = value; }

}  // namespace wristssl::util
