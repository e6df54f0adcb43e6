#pragma once
// `wristssl launch --nproc N -- COMMAND...`: N local processes of one distributed job, as torchrun
// starts them: each gets MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
// and OMP_NUM_THREADS (the cores divided between them). Their output is shown line by line with a
// "[rank i]" prefix; SIGINT and SIGTERM are passed on; when one ends with an error, the others are
// stopped (SIGTERM, then SIGKILL after a grace period) and its exit status and last lines are
// shown.

#include <string>
#include <vector>

namespace wristssl::distributed {

struct LaunchOptions {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port
  int threads = 0;      // per process; 0: the machine's cores / nproc (at least 1)
  int tail_lines = 20;  // lines shown of a failed rank
  int grace_s = 10;     // SIGTERM to SIGKILL
  std::vector<std::string> command;
};

/// Runs the job; returns 0 when every rank succeeded, else the first failure's status (128 + signal
/// for a rank killed by a signal).
int run_launch(const LaunchOptions& options);

/// Parses `launch [--nproc N] [--master-addr A] [--master-port P] [--threads T] -- COMMAND...`
/// (argv after the word "launch"); throws std::invalid_argument naming what is wrong.
LaunchOptions parse_launch_args(const std::vector<std::string>& args);

}  // namespace wristssl::distributed
