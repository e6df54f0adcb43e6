#include "wristssl/distributed/env.h"

#include <cstdlib>
#include <stdexcept>

namespace wristssl::distributed {
namespace {

// The variable as an integer, or `fallback` when unset; throws naming it when set but not a number.
int integer(const std::function<const char*(const char*)>& get, const char* name, int fallback,
            bool* present) {
  const char* v = get(name);
  if (present) *present = v && *v;
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000)
    throw std::runtime_error(std::string(name) + "='" + v + "' is not a non-negative integer");
  return static_cast<int>(x);
}

}  // namespace

Env parse_env(const std::function<const char*(const char*)>& get) {
  Env e;
  bool has_rank = false, has_world = false;
  e.rank = integer(get, "RANK", 0, &has_rank);
  e.world_size = integer(get, "WORLD_SIZE", 1, &has_world);
  if (has_rank != has_world)
    throw std::runtime_error(has_rank ? "RANK is set but WORLD_SIZE is not"
                                      : "WORLD_SIZE is set but RANK is not");
  e.source = has_rank ? "torchrun" : "none";
  if (!has_rank) {
    bool has_procid = false, has_ntasks = false;
    const int procid = integer(get, "SLURM_PROCID", 0, &has_procid);
    const int ntasks = integer(get, "SLURM_NTASKS", 1, &has_ntasks);
    if (has_procid && has_ntasks && ntasks > 1) {
      e.rank = procid;
      e.world_size = ntasks;
      e.source = "slurm";
    }
  }
  if (e.world_size < 1) throw std::runtime_error("WORLD_SIZE must be >= 1");
  if (e.rank >= e.world_size)
    throw std::runtime_error("RANK=" + std::to_string(e.rank) +
                             " is not below WORLD_SIZE=" + std::to_string(e.world_size));
  const bool slurm = e.source == "slurm";
  e.local_rank = integer(get, slurm ? "SLURM_LOCALID" : "LOCAL_RANK", 0, nullptr);
  e.local_world_size =
      integer(get, slurm ? "SLURM_NTASKS_PER_NODE" : "LOCAL_WORLD_SIZE", 0, nullptr);
  if (e.local_world_size == 0) e.local_world_size = 1;
  if (e.local_rank >= e.local_world_size && e.local_world_size > 1)
    throw std::runtime_error(
        "LOCAL_RANK=" + std::to_string(e.local_rank) +
        " is not below LOCAL_WORLD_SIZE=" + std::to_string(e.local_world_size));
  if (!e.distributed()) return e;
  const char* addr = get("MASTER_ADDR");
  if (!addr || !*addr)
    throw std::runtime_error("WORLD_SIZE=" + std::to_string(e.world_size) +
                             " but MASTER_ADDR is not set");
  e.master_addr = addr;
  bool has_port = false;
  e.master_port = integer(get, "MASTER_PORT", 0, &has_port);
  if (!has_port)
    throw std::runtime_error("WORLD_SIZE=" + std::to_string(e.world_size) +
                             " but MASTER_PORT is not set");
  if (e.master_port < 1 || e.master_port > 65535)
    throw std::runtime_error("MASTER_PORT=" + std::to_string(e.master_port) +
                             " is outside 1-65535");
  return e;
}

Env env_from_environment() {
  return parse_env([](const char* name) { return std::getenv(name); });
}

}  // namespace wristssl::distributed
