#pragma once
// Where this process stands in a distributed job, from the variables torchrun, `wristssl launch`
// and SLURM launch scripts set: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE (and SLURM's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE
// when RANK / WORLD_SIZE are absent). Without them the job is one process, exactly as before.

#include <functional>
#include <string>

namespace wristssl::distributed {

struct Env {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // processes on this machine (threads are divided between them)
  std::string master_addr;
  int master_port = 0;
  std::string source;  // "none", "torchrun" or "slurm": where the values came from

  bool distributed() const { return world_size > 1; }
};

/// Parses the variables through `get` (a getenv). Throws std::runtime_error naming the variable and
/// the problem: a value that is not a number, RANK >= WORLD_SIZE, a missing MASTER_ADDR or
/// MASTER_PORT when WORLD_SIZE > 1, a port outside 1-65535.
Env parse_env(const std::function<const char*(const char*)>& get);

/// parse_env over the process environment.
Env env_from_environment();

}  // namespace wristssl::distributed
