#include "wristssl/train/run_start.h"

#include <filesystem>

#include "wristssl/train/run_identity.h"
#include "wristssl/util/fs.h"

namespace wristssl::train {

RunStart start_run(const std::string& who, const std::string& out, int threads,
                   const std::string& precision, const std::string& dist_backend,
                   int dist_timeout) {
  RunStart run;
  // Distributed: every rank runs the trainer on its share of each global batch; rank 0 alone
  // writes.
  run.group = distributed::init({dist_backend, dist_timeout});
  run.main = distributed::is_main();
  run.world = distributed::world_size();
  run.threads = distributed::threads_per_rank(threads);
  if (run.main) std::filesystem::create_directories(out);
  reset_compute(run, who, precision);
  return run;
}

void reset_compute(RunStart& run, const std::string& who, const std::string& precision) {
  run.compute = util::setup_compute(who, run.threads, precision);
  run.device = distributed::device_for_rank(run.compute.device);
}

nlohmann::json record_run_config(const RunStart& run, nlohmann::json options,
                                 const nlohmann::json& resolved,
                                 const std::vector<std::string>& run_keys, size_t training_images,
                                 const std::string& out) {
  nlohmann::json config = std::move(options);
  config["world_size"] = run.world;
  config["resolved"] = resolved;
  require_same_run(config, run_keys, training_images);
  if (run.main) util::atomic_write(out + "/config.json", config.dump(2));
  return config;
}

}  // namespace wristssl::train
