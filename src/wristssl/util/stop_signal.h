#pragma once
// SIGINT and SIGTERM for every long-running command alike (pretrain, train, run, study, serve,
// listen, launch): the handler only records the signal; the work polls for it and stops at its next
// safe point (a trainer checkpoints and exits resumably, a service finishes the requests in flight,
// launch passes the signal on to its ranks).

#include <atomic>

namespace wristssl::util {

/// Installs the SIGINT / SIGTERM handlers. Safe to call more than once.
void install_stop_handlers();

/// True once SIGINT or SIGTERM arrived after install_stop_handlers (or request_stop(true) was
/// called).
bool stop_requested();

/// The flag itself, for code that waits on an atomic (the DICOM node checks it at least once a
/// second).
const std::atomic<bool>& stop_flag();

/// The last signal received since the previous call (0 when none), cleared by the call: a
/// supervisor (launch) passes each signal on once. The stop flag stays set.
int take_stop_signal();

/// Sets or clears the stop request as a signal would; for tests and for stops decided elsewhere
/// (another rank's signal).
void request_stop(bool value = true);

}  // namespace wristssl::util
