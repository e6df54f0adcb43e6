#pragma once
// Data-parallel training on torch.distributed's C++ core (c10d): a TCPStore rendezvous and a Gloo
// process group (NCCL where LibTorch has CUDA), and the pieces the C++ frontend lacks (it has no
// DistributedDataParallel): gradients averaged in buckets, initial weights broadcast from rank 0,
// embeddings gathered across ranks with their gradients, and batch norm over the global batch.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wristssl/distributed/env.h"

namespace wristssl::distributed {

struct GroupOptions {
  std::string backend = "auto";  // auto (NCCL on CUDA builds with a GPU, else Gloo), gloo, nccl
  int timeout_s = 300;           // a rank that dies or hangs ends every other one within this
};

class Group {
 public:
  /// The rendezvous (rank 0 serves the TCPStore at MASTER_ADDR:MASTER_PORT) and the process group.
  /// Throws std::runtime_error with the reason (port in use, peers not arriving within the timeout,
  /// ...).
  Group(const Env& env, const GroupOptions& options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int size() const;
  const Env& env() const;
  std::string backend() const;

  /// In place, summed over ranks.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  /// Starts summing `t` in place over the ranks and returns at once; call the returned function to
  /// wait for it (it throws like all_reduce_sum). Collectives run in the order they are started, on
  /// every rank.
  std::function<void()> start_all_reduce_sum(torch::Tensor t);
  /// In place, rank `root`'s values everywhere.
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  /// Every rank's `t` (all of one shape), in rank order.
  std::vector<torch::Tensor> all_gather(const torch::Tensor& t);
  void barrier();
  /// Where tensors must be for this group's collectives: the rank's GPU for NCCL, the CPU for Gloo.
  c10::Device collective_device() const;
  /// Every rank publishes `value` for `what` through the store; when a rank's value differs from
  /// rank 0's, every rank throws naming `what`, the rank and both values (e.g. ranks started with
  /// different options).
  void require_same(const std::string& what, const std::string& value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Time and volume of this process's collectives since the last reset (for logs and the benchmark).
struct CommStats {
  double all_reduce_s = 0, all_gather_s = 0, other_s = 0;  // broadcast, barrier
  double all_reduce_bytes = 0, all_gather_bytes = 0;       // this rank's tensors
  int64_t calls = 0;
};
CommStats comm_stats();
void reset_comm_stats();

/// The process-group backends this build has ("gloo", "nccl").
std::vector<std::string> available_backends();

/// Creates this process's group from the environment when WORLD_SIZE > 1 and keeps it; returns it,
/// or nullptr for a one-process job. Calling it again returns the same group.
Group* init(const GroupOptions& options = {});
/// The group made by init, or nullptr.
Group* group();
/// The device this rank computes on: with a group and CUDA, GPU number LOCAL_RANK; otherwise
/// `fallback`.
c10::Device device_for_rank(c10::Device fallback);

/// Whether this process writes files and logs: rank 0, or a one-process job.
bool is_main();
/// The number of ranks (1 without a group) and this process's rank (0 without a group).
int world_size();
int rank();

/// `t` [N, ...] of every rank concatenated in rank order [world * N, ...]; the gradient of the
/// result flows back to each rank's own rows, summed over the ranks' losses. Without a group: `t`.
torch::Tensor all_gather_with_grad(const torch::Tensor& t);

/// Rank 0's parameters and buffers everywhere (initial weights, or after a resume).
void broadcast_module(torch::nn::Module& module);

/// Averages the parameters' gradients over the ranks in buckets of about `bucket_bytes`, overlapped
/// with the backward pass: made before backward(), it hooks the parameters that need gradients;
/// parameters are bucketed in reverse order (roughly the order backward produces their gradients),
/// and a bucket's all-reduce starts as soon as its last gradient arrives, while backward goes on.
/// finish() waits and writes the averages into .grad. Without a group it does nothing.
class GradientReducer {
 public:
  explicit GradientReducer(torch::nn::Module& module, size_t bucket_bytes = 25u << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Sums `values` over the ranks (one small all-reduce); unchanged without a group.
std::vector<double> sum_over_ranks(const std::vector<double>& values);

/// Whether `flag` is true on any rank (one small all-reduce, so every rank waits here for the
/// others, as at a barrier); `flag` itself without a group.
bool any_rank(bool flag);

/// The LibTorch threads a rank uses: `requested`, or when it is 0 in a distributed job, the
/// machine's cores divided between its ranks (LOCAL_WORLD_SIZE); 0 (all cores) without a group.
int threads_per_rank(int requested);

/// Synchronised batch norm for the lifetime of the object, when `on` (and a group exists): layers
/// in training mode then normalise with the mean and variance of the whole global batch (statistics
/// and their gradients all-reduced), as one process with the global batch would. Off again when it
/// goes, however the scope ends.
class SyncBatchNorm {
 public:
  explicit SyncBatchNorm(bool on);
  ~SyncBatchNorm();
  SyncBatchNorm(const SyncBatchNorm&) = delete;
  SyncBatchNorm& operator=(const SyncBatchNorm&) = delete;
};

}  // namespace wristssl::distributed
