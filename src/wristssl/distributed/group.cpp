#include "wristssl/distributed/group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(WRISTSSL_HAVE_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "wristssl/models/resnet.h"
#include "wristssl/util/threads.h"

namespace wristssl::distributed {

struct Group::Impl {
  Env env;
  std::string backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};

namespace {

std::unique_ptr<Group> g_group;
CommStats g_stats;

double nbytes(const std::vector<torch::Tensor>& ts) {
  double b = 0;
  for (const auto& t : ts)
    b += static_cast<double>(t.numel()) * static_cast<double>(t.element_size());
  return b;
}

struct Timer {
  explicit Timer(double* into) : into_(into), t0_(std::chrono::steady_clock::now()) {}
  ~Timer() {
    *into_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    ++g_stats.calls;
  }
  double* into_;
  std::chrono::steady_clock::time_point t0_;
};

// The first line of a c10d error (the rest is a C++ backtrace).
std::string first_line(const std::exception& e) {
  std::string reason = e.what();
  const size_t nl = reason.find('\n');
  if (nl != std::string::npos) reason.resize(nl);
  return reason;
}

// Runs a collective; a failure (a peer gone, a timeout) becomes an error that says what happened.
void run(const c10::intrusive_ptr<c10d::Work>& work, const char* what, int rank) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    const std::string reason = first_line(e);
    throw std::runtime_error("rank " + std::to_string(rank) + ": " + what +
                             " failed: another rank died, hung or cannot be reached (" + reason +
                             ")");
  }
}

}  // namespace

Group::Group(const Env& env, const GroupOptions& o) : impl_(std::make_unique<Impl>()) {
  impl_->env = env;
  if (o.timeout_s < 1) throw std::runtime_error("--dist-timeout must be >= 1 second");
  const auto timeout = std::chrono::milliseconds(int64_t{o.timeout_s} * 1000);
  std::string backend = o.backend;
  if (backend == "auto") backend = torch::cuda::is_available() ? "nccl" : "gloo";
  if (backend != "gloo" && backend != "nccl")
    throw std::runtime_error("--dist-backend must be auto, gloo or nccl");
  impl_->backend = backend;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<size_t>(env.world_size);
  so.waitWorkers = false;  // the process group waits for the others (one timeout, not two)
  so.timeout = timeout;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    const std::string reason = first_line(e);
    throw std::runtime_error("rank " + std::to_string(env.rank) + ": rendezvous at " +
                             env.master_addr + ":" + std::to_string(env.master_port) + " failed (" +
                             reason + ")" +
                             (env.rank == 0 ? "; is the port in use?" : "; is rank 0 running?"));
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("wristssl", impl_->store);
  if (backend == "gloo") {
#if defined(WRISTSSL_HAVE_GLOO)
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    go->devices.push_back(env.master_addr == "127.0.0.1" || env.master_addr == "localhost"
                              ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                              : c10d::ProcessGroupGloo::createDefaultDevice());
    go->threads = 1;
    try {
      impl_->pg =
          c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, go);
    } catch (const std::exception& e) {
      const std::string reason = first_line(e);
      throw std::runtime_error("rank " + std::to_string(env.rank) + ": not every rank of " +
                               std::to_string(env.world_size) + " joined within " +
                               std::to_string(o.timeout_s) + " s (" + reason +
                               "); is every rank running, with the same MASTER_ADDR, MASTER_PORT "
                               "and WORLD_SIZE?");
    }
#else
    throw std::runtime_error(
        "this build has no Gloo (c10d's ProcessGroupGloo headers were not found)");
#endif
  } else {
#if defined(USE_C10D_NCCL)
    auto no = c10d::ProcessGroupNCCL::Options::create();
    no->timeout = timeout;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, no);
#else
    throw std::runtime_error("this LibTorch has no NCCL (a CPU build): use --dist-backend gloo");
#endif
  }
}

Group::~Group() = default;
int Group::rank() const { return impl_->env.rank; }
int Group::size() const { return impl_->env.world_size; }
const Env& Group::env() const { return impl_->env; }
std::string Group::backend() const { return impl_->backend; }

void Group::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  g_stats.all_reduce_bytes += nbytes(tensors);
  const Timer timer(&g_stats.all_reduce_s);
  run(impl_->pg->allreduce(tensors, o), "all-reduce", rank());
}

std::function<void()> Group::start_all_reduce_sum(torch::Tensor t) {
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  g_stats.all_reduce_bytes +=
      static_cast<double>(t.numel()) * static_cast<double>(t.element_size());
  std::vector<torch::Tensor> one{std::move(t)};
  auto work = impl_->pg->allreduce(one, o);
  const int r = rank();
  return [work, r] {
    const Timer timer(&g_stats.all_reduce_s);  // the wait only: the rest overlapped with backward
    run(work, "all-reduce", r);
  };
}

void Group::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  const Timer timer(&g_stats.other_s);
  run(impl_->pg->broadcast(tensors, o), "broadcast", rank());
}

std::vector<torch::Tensor> Group::all_gather(const torch::Tensor& t) {
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(t));
  std::vector<torch::Tensor> in{t.contiguous()};
  g_stats.all_gather_bytes += nbytes(in);
  const Timer timer(&g_stats.all_gather_s);
  run(impl_->pg->allgather(out, in), "all-gather", rank());
  return out[0];
}

c10::Device Group::collective_device() const {
  if (impl_->backend != "nccl") return c10::kCPU;
  const int64_t gpus = std::max<int64_t>(1, static_cast<int64_t>(torch::cuda::device_count()));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(impl_->env.local_rank % gpus));
}

void Group::barrier() {
  const Timer timer(&g_stats.other_s);
  run(impl_->pg->barrier(), "barrier", rank());
}

void Group::require_same(const std::string& what, const std::string& value) {
  const std::string key = "same/" + what;
  const std::vector<uint8_t> bytes(value.begin(), value.end());
  impl_->store->set(key + "/" + std::to_string(rank()), bytes);
  barrier();
  std::string mismatch;
  const std::vector<uint8_t> first = impl_->store->get(key + "/0");
  for (int r = 1; r < size() && mismatch.empty(); ++r) {
    const std::vector<uint8_t> other = impl_->store->get(key + "/" + std::to_string(r));
    if (other != first) {
      std::string a(first.begin(), first.end()), b(other.begin(), other.end());
      if (a.size() > 200) a = a.substr(0, 200) + "...";
      if (b.size() > 200) b = b.substr(0, 200) + "...";
      mismatch = "ranks were started with different " + what + ": rank 0 has " + a + ", rank " +
                 std::to_string(r) + " has " + b;
    }
  }
  barrier();
  if (!mismatch.empty())
    throw std::runtime_error("rank " + std::to_string(rank()) + ": " + mismatch);
}

// ---------------------------------------------------------------------------------------------------------

Group* init(const GroupOptions& options) {
  if (g_group) return g_group.get();
  const Env env = env_from_environment();
  if (!env.distributed()) return nullptr;
  g_group = std::make_unique<Group>(env, options);
  std::fprintf(stderr, "distributed: rank %d of %d (local %d of %d), %s, rendezvous %s:%d (%s)\n",
               env.rank, env.world_size, env.local_rank, env.local_world_size,
               g_group->backend().c_str(), env.master_addr.c_str(), env.master_port,
               env.source.c_str());
  return g_group.get();
}

Group* group() { return g_group.get(); }

c10::Device device_for_rank(c10::Device fallback) {
  if (!g_group || !fallback.is_cuda()) return fallback;
  // One GPU per local rank; more ranks than GPUs share them (with Gloo: NCCL needs one each).
  const int64_t gpus = std::max<int64_t>(1, static_cast<int64_t>(torch::cuda::device_count()));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(g_group->env().local_rank % gpus));
}

CommStats comm_stats() { return g_stats; }
void reset_comm_stats() { g_stats = CommStats(); }

std::vector<std::string> available_backends() {
  std::vector<std::string> b;
#if defined(WRISTSSL_HAVE_GLOO)
  b.push_back("gloo");
#endif
#if defined(USE_C10D_NCCL)
  b.push_back("nccl");
#endif
  return b;
}
bool is_main() { return !g_group || g_group->rank() == 0; }
int world_size() { return g_group ? g_group->size() : 1; }
int rank() { return g_group ? g_group->rank() : 0; }

namespace {

struct GatherFn : public torch::autograd::Function<GatherFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& t) {
    ctx->saved_data["rows"] = t.size(0);
    return torch::cat(g_group->all_gather(t.contiguous()), 0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t rows = ctx->saved_data["rows"].toInt();
    std::vector<torch::Tensor> g{grads[0].contiguous().clone()};
    g_group->all_reduce_sum(g);  // every rank's loss depends on this rank's rows
    return {g[0].narrow(0, rank() * rows, rows)};
  }
};

// Batch norm over the global batch: y = (x - mean) / sqrt(var + eps) * w + b with mean and (biased)
// var over every rank's N * H * W values per channel, in float32 whatever the input's precision.
struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               torch::Tensor running_mean, torch::Tensor running_var,
                               double momentum, double eps) {
    const torch::Tensor xf = x.to(torch::kFloat);
    const int64_t c = xf.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < xf.dim(); ++d) dims.push_back(d);
    std::vector<int64_t> shape(static_cast<size_t>(xf.dim()), 1);
    shape[1] = c;
    std::vector<torch::Tensor> buf{
        torch::cat({xf.sum(dims), (xf * xf).sum(dims),
                    torch::full({1}, static_cast<double>(xf.numel() / c), xf.options())})};
    g_group->all_reduce_sum(buf);
    const double count = buf[0][2 * c].item<double>();
    const torch::Tensor mean = buf[0].narrow(0, 0, c) / count;
    const torch::Tensor var = (buf[0].narrow(0, c, c) / count - mean * mean).clamp_min(0);
    const torch::Tensor invstd = (var + eps).rsqrt();
    {
      torch::NoGradGuard no_grad;
      if (running_mean.defined()) running_mean.mul_(1 - momentum).add_(mean * momentum);
      if (running_var.defined() && count > 1)
        running_var.mul_(1 - momentum).add_(var * (count / (count - 1)) * momentum);
    }
    const torch::Tensor xhat = (xf - mean.view(shape)) * invstd.view(shape);
    const torch::Tensor y =
        xhat * weight.to(torch::kFloat).view(shape) + bias.to(torch::kFloat).view(shape);
    ctx->save_for_backward({xhat, invstd, weight});
    ctx->saved_data["count"] = count;
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    return y.to(x.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& xhat = saved[0];
    const torch::Tensor& invstd = saved[1];
    const torch::Tensor& weight = saved[2];
    const double count = ctx->saved_data["count"].toDouble();
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    const torch::Tensor gy = grads[0].to(torch::kFloat);
    const int64_t c = xhat.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < xhat.dim(); ++d) dims.push_back(d);
    std::vector<int64_t> shape(static_cast<size_t>(xhat.dim()), 1);
    shape[1] = c;
    const torch::Tensor sum_dy = gy.sum(dims);
    const torch::Tensor sum_dy_xhat = (gy * xhat).sum(dims);
    std::vector<torch::Tensor> buf{torch::cat({sum_dy, sum_dy_xhat})};
    g_group->all_reduce_sum(buf);
    const torch::Tensor mean_dy = buf[0].narrow(0, 0, c) / count;
    const torch::Tensor mean_dy_xhat = buf[0].narrow(0, c, c) / count;
    const torch::Tensor dx = (gy - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)) *
                             (invstd * weight.to(torch::kFloat)).view(shape);
    // The affine parameters' gradients stay this rank's own: GradientReducer averages them like the
    // others.
    return {dx.to(dtype),
            sum_dy_xhat.to(weight.scalar_type()),
            sum_dy.to(weight.scalar_type()),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

torch::Tensor sync_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  if (!g_group || !bn.is_training()) return bn.forward(x);
  const auto& o = bn.options;
  if (bn.num_batches_tracked.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
  }
  const double momentum = o.momentum().has_value() ? *o.momentum() : 0.1;
  return SyncBatchNormFn::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum,
                                o.eps());
}

}  // namespace

torch::Tensor all_gather_with_grad(const torch::Tensor& t) {
  if (!g_group) return t;
  return GatherFn::apply(t);
}

void broadcast_module(torch::nn::Module& module) {
  if (!g_group) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> all;
  for (auto& p : module.parameters()) all.push_back(p);
  for (auto& b : module.buffers()) all.push_back(b);
  for (torch::Tensor& t : all) {
    // Broadcast through a contiguous copy (channels-last parameters are not contiguous in memory
    // order).
    std::vector<torch::Tensor> one{t.contiguous()};
    g_group->broadcast(one, 0);
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

struct GradientReducer::Impl {
  struct Bucket {
    std::vector<size_t> params;  // indices into `params`
    torch::Tensor flat;          // float32, the bucket's gradients end to end
    std::vector<int64_t> offsets;
    size_t pending = 0;          // gradients not yet arrived this step
    std::function<void()> wait;  // set once the all-reduce has started
  };
  std::vector<torch::Tensor> params;
  std::vector<std::pair<size_t, size_t>> where;  // param -> (bucket, index in bucket)
  std::vector<bool> arrived;
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;

  void start(Bucket& b) { b.wait = g_group->start_all_reduce_sum(b.flat); }
};

GradientReducer::GradientReducer(torch::nn::Module& module, size_t bucket_bytes) {
  if (!g_group) return;
  impl_ = std::make_unique<Impl>();
  for (auto& p : module.parameters())
    if (p.requires_grad()) impl_->params.push_back(p);
  // Reverse order: the last layers' gradients come first in the backward pass.
  std::vector<size_t> order(impl_->params.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
  impl_->where.resize(impl_->params.size());
  impl_->arrived.assign(impl_->params.size(), false);
  size_t bytes = 0;
  for (size_t i : order) {
    if (impl_->buckets.empty() || bytes >= bucket_bytes) {
      impl_->buckets.emplace_back();
      bytes = 0;
    }
    auto& b = impl_->buckets.back();
    impl_->where[i] = {impl_->buckets.size() - 1, b.params.size()};
    b.params.push_back(i);
    bytes += static_cast<size_t>(impl_->params[i].numel()) * 4;
  }
  for (auto& b : impl_->buckets) {
    int64_t total = 0;
    for (size_t i : b.params) {
      b.offsets.push_back(total);
      total += impl_->params[i].numel();
    }
    b.flat = torch::zeros({total}, impl_->params[b.params[0]].options().dtype(torch::kFloat));
    b.pending = b.params.size();
  }
  Impl* impl = impl_.get();
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    impl_->hooks.push_back(impl_->params[i].register_hook([impl, i](torch::Tensor g) {
      auto [bi, k] = impl->where[i];
      Impl::Bucket& b = impl->buckets[bi];
      if (!impl->arrived[i]) {  // a leaf's hook runs once per backward, with its summed gradient
        impl->arrived[i] = true;
        torch::NoGradGuard no_grad;
        b.flat.narrow(0, b.offsets[k], g.numel()).copy_(g.contiguous().view(-1));
        if (--b.pending == 0) impl->start(b);
      }
      return g;
    }));
  }
}

GradientReducer::~GradientReducer() {
  if (!impl_) return;
  for (size_t i = 0; i < impl_->params.size(); ++i) impl_->params[i].remove_hook(impl_->hooks[i]);
}

void GradientReducer::finish() {
  if (!impl_) return;
  torch::NoGradGuard no_grad;
  // Buckets with gradients that never came (parameters unused this step): their zeros, started in
  // bucket order.
  for (auto& b : impl_->buckets)
    if (!b.wait) impl_->start(b);
  const double scale = 1.0 / g_group->size();
  for (auto& b : impl_->buckets) {
    b.wait();
    b.flat.mul_(scale);
    for (size_t k = 0; k < b.params.size(); ++k) {
      torch::Tensor& p = impl_->params[b.params[k]];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      torch::Tensor& g = p.mutable_grad();
      g.copy_(b.flat.narrow(0, b.offsets[k], g.numel()).view(g.sizes()).to(g.scalar_type()));
    }
  }
}

std::vector<double> sum_over_ranks(const std::vector<double>& values) {
  if (!g_group || values.empty()) return values;
  // NCCL reduces only GPU tensors; Gloo takes either.
  std::vector<torch::Tensor> t{
      torch::tensor(values, torch::kDouble).to(g_group->collective_device())};
  g_group->all_reduce_sum(t);
  const torch::Tensor back = t[0].cpu();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = back[static_cast<int64_t>(i)].item<double>();
  return out;
}

bool any_rank(bool flag) { return sum_over_ranks({flag ? 1.0 : 0.0})[0] > 0; }

int threads_per_rank(int requested) {
  if (requested > 0 || !g_group) return requested;
  return std::max(1, util::available_cores() / std::max(1, g_group->env().local_world_size));
}

SyncBatchNorm::SyncBatchNorm(bool on) {
  models::set_batch_norm_function(on && g_group ? &sync_batch_norm : nullptr);
}
SyncBatchNorm::~SyncBatchNorm() { models::set_batch_norm_function(nullptr); }

}  // namespace wristssl::distributed
