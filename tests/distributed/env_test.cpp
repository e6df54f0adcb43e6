// The distributed environment: torchrun's and SLURM's variables, and clear errors for inconsistent
// ones.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>

#include "wristssl/distributed/env.h"
#include "wristssl/distributed/launch.h"

namespace wristssl::distributed {
namespace {

Env parse(const std::map<std::string, std::string>& vars) {
  return parse_env([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    parse(vars);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(DistEnv, NoVariablesIsOneProcess) {
  const Env e = parse({});
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
}

TEST(DistEnv, TorchrunVariables) {
  const Env e = parse({{"RANK", "3"},
                       {"WORLD_SIZE", "8"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "node0"},
                       {"MASTER_PORT", "29500"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.source, "torchrun");
}

TEST(DistEnv, SlurmVariablesWhenRankIsAbsent) {
  const Env e = parse({{"SLURM_PROCID", "5"},
                       {"SLURM_NTASKS", "16"},
                       {"SLURM_LOCALID", "1"},
                       {"SLURM_NTASKS_PER_NODE", "4"},
                       {"MASTER_ADDR", "gpu001"},
                       {"MASTER_PORT", "29400"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  // One SLURM task is one process.
  EXPECT_FALSE(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed());
}

TEST(DistEnv, InconsistentVariablesAreNamed) {
  EXPECT_NE(
      error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}})
          .find("RANK=2 is not below WORLD_SIZE=2"),
      std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}})
                .find("MASTER_PORT is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "5"}})
                .find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}})
          .find("outside 1-65535"),
      std::string::npos);
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}}).find("WORLD_SIZE is not"), std::string::npos);
}

TEST(DistLaunch, ArgumentsAndTheCommandAfterTheSeparator) {
  const LaunchOptions o =
      parse_launch_args({"--nproc", "4", "--master-port", "29600", "--", "prog", "--nproc", "x"});
  EXPECT_EQ(o.nproc, 4);
  EXPECT_EQ(o.master_port, 29600);
  EXPECT_EQ(o.command, (std::vector<std::string>{"prog", "--nproc", "x"}));
  EXPECT_THROW(parse_launch_args({"--nproc", "2"}), std::invalid_argument);  // no command
  EXPECT_THROW(parse_launch_args({"--nproc", "0", "--", "x"}),
               std::invalid_argument);  // no process
  EXPECT_THROW(parse_launch_args({"--bogus", "--", "x"}), std::invalid_argument);
}

TEST(DistLaunch, AFailingRankStopsTheOthersWithItsStatus) {
  LaunchOptions o;
  o.nproc = 2;
  o.grace_s = 2;
  // Rank 1 fails at once; rank 0 would sleep for a minute: launch must stop it and report rank 1's
  // status.
  o.command = {"/bin/sh", "-c", "if [ \"$RANK\" = 1 ]; then echo dying; exit 7; fi; sleep 60"};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_launch(o), 7);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
  o.command = {
      "/bin/sh", "-c",
      "test \"$WORLD_SIZE\" = 2 && test -n \"$MASTER_PORT\" && test \"$LOCAL_RANK\" = \"$RANK\""};
  EXPECT_EQ(run_launch(o), 0);
}

}  // namespace
}  // namespace wristssl::distributed
