#pragma once
// What every trainer does first, alike (pretraining and the classifier): join the distributed job
// when launched as one, give this rank its share of the threads, make the run folder (rank 0), set
// up the compute (threads, device, precision); and, once the trainer has resolved its options,
// record them as RUN/config.json after checking that every rank would train the same run.

#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "wristssl/distributed/group.h"
#include "wristssl/util/device.h"

namespace wristssl::train {

struct RunStart {
  distributed::Group* group = nullptr;  // null outside a distributed job
  bool main = true;                     // rank 0: the rank that writes
  int world = 1;
  int threads = 0;  // this rank's share of the requested threads (0: all cores)
  util::Compute compute;
  c10::Device device = c10::kCPU;  // this rank's device
};

/// Starts a run of trainer `who` ("pretrain", "classifier") writing to `out` (not empty: the
/// trainer checks).
RunStart start_run(const std::string& who, const std::string& out, int threads,
                   const std::string& precision, const std::string& dist_backend, int dist_timeout);

/// Sets up the compute again (after `wristssl tune` stored a new choice) and this rank's device.
void reset_compute(RunStart& run, const std::string& who, const std::string& precision);

/// RUN/config.json: the options (`options`, as to_json gives them), the world size and what the run
/// resolved at start (`resolved`). Every rank must agree on `run_keys` and on the number of
/// training images (a distributed job refuses ranks that would train another model); rank 0 writes
/// the file. Returns the config.
nlohmann::json record_run_config(const RunStart& run, nlohmann::json options,
                                 const nlohmann::json& resolved,
                                 const std::vector<std::string>& run_keys, size_t training_images,
                                 const std::string& out);
/// The same for a trainer's array of run keys (kRunKeys).
template <size_t N>
nlohmann::json record_run_config(const RunStart& run, nlohmann::json options,
                                 const nlohmann::json& resolved, const char* const (&run_keys)[N],
                                 size_t training_images, const std::string& out) {
  return record_run_config(run, std::move(options), resolved,
                           std::vector<std::string>(std::begin(run_keys), std::end(run_keys)),
                           training_images, out);
}

}  // namespace wristssl::train
