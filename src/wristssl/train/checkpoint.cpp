#include "wristssl/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>

#include "wristssl/util/fs.h"
#include "wristssl/util/hash.h"

namespace wristssl::train {
namespace {

constexpr char kMagic[8] = {'W', 'S', 'S', 'L', 'C', 'K', 'P', 'T'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 64;  // magic, version, hex SHA-256 of the payload

void write_archive(const std::string& path, torch::serialize::OutputArchive& archive) {
  std::ostringstream payload;
  archive.save_to(payload);
  const std::string body = payload.str();
  std::string file(kMagic, 8);
  const uint32_t v = kFormatVersion;
  file.append(reinterpret_cast<const char*>(&v), 4);
  file += util::sha256_hex(body.data(), body.size());
  file += body;
  util::atomic_write(path, file);
}

void read_archive(const std::string& path, torch::serialize::InputArchive& archive) {
  std::string file;
  try {
    file = util::read_text(path);
  } catch (const std::exception& e) {
    throw CheckpointError(e.what());
  }
  if (file.size() < kHeaderBytes || std::memcmp(file.data(), kMagic, 8) != 0) {
    throw CheckpointError(path + ": not a wristssl checkpoint (no WSSLCKPT header)");
  }
  uint32_t v;
  std::memcpy(&v, file.data() + 8, 4);
  if (v != kFormatVersion) {
    throw CheckpointError(path + ": checkpoint format " + std::to_string(v) + ", this build reads " +
                          std::to_string(kFormatVersion));
  }
  const std::string want(file.data() + 12, 64);
  if (util::sha256_hex(file.data() + kHeaderBytes, file.size() - kHeaderBytes) != want) {
    throw CheckpointError(path + ": checkpoint is damaged (SHA-256 of its contents does not match)");
  }
  std::istringstream in(file.substr(kHeaderBytes));
  try {
    archive.load_from(in);
  } catch (const std::exception& e) {
    throw CheckpointError(path + ": unreadable checkpoint payload: " + std::string(e.what()).substr(0, 300));
  }
}

std::string read_string(torch::serialize::InputArchive& a, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!a.try_read(key, v) || !v.isString()) throw CheckpointError(path + ": checkpoint lacks '" + key + "'");
  return v.toStringRef();
}

int64_t read_int(torch::serialize::InputArchive& a, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!a.try_read(key, v) || !v.isInt()) throw CheckpointError(path + ": checkpoint lacks '" + key + "'");
  return v.toInt();
}

void check_kind(torch::serialize::InputArchive& a, const std::string& path, const std::string& expected) {
  const std::string kind = read_string(a, "kind", path);
  if (kind != expected) {
    throw CheckpointError(path + ": a '" + kind + "' checkpoint, not '" + expected + "' (a file of another run?)");
  }
}

void load_module(torch::serialize::InputArchive& a, torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive m;
  if (!a.try_read("model", m)) throw CheckpointError(path + ": checkpoint lacks 'model'");
  try {
    module.load(m);
  } catch (const std::exception& e) {
    throw CheckpointError(path + ": weights do not fit this model: " + std::string(e.what()).substr(0, 300));
  }
}

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& module, torch::optim::Optimizer* optimizer,
                     const CheckpointState& s) {
  torch::serialize::OutputArchive a;
  a.write("kind", c10::IValue(s.kind));
  a.write("config", c10::IValue(s.config_json));
  a.write("epoch", c10::IValue(s.epoch));
  a.write("batch_in_epoch", c10::IValue(s.batch_in_epoch));
  a.write("step", c10::IValue(s.step));
  a.write("extra", c10::IValue(s.extra_json));
  torch::serialize::OutputArchive m;
  module.save(m);
  a.write("model", m);
  if (optimizer) {
    torch::serialize::OutputArchive o;
    optimizer->save(o);
    a.write("optimizer", o);
  }
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    a.write("cpu_rng", gen.get_state());
  }
  write_archive(path, a);
}

CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& module, torch::optim::Optimizer* optimizer,
                                const std::string& expected_kind) {
  torch::serialize::InputArchive a;
  read_archive(path, a);
  check_kind(a, path, expected_kind);
  CheckpointState s;
  s.kind = expected_kind;
  s.config_json = read_string(a, "config", path);
  s.epoch = read_int(a, "epoch", path);
  s.batch_in_epoch = read_int(a, "batch_in_epoch", path);
  s.step = read_int(a, "step", path);
  s.extra_json = read_string(a, "extra", path);
  load_module(a, module, path);
  if (optimizer) {
    torch::serialize::InputArchive o;
    if (!a.try_read("optimizer", o)) throw CheckpointError(path + ": checkpoint lacks the optimizer state");
    optimizer->load(o);
  }
  torch::Tensor rng;
  if (a.try_read("cpu_rng", rng)) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  return s;
}

void save_weights(const std::string& path, torch::nn::Module& module, const std::string& kind,
                  const std::string& config_json) {
  torch::serialize::OutputArchive a;
  a.write("kind", c10::IValue(kind));
  a.write("config", c10::IValue(config_json));
  torch::serialize::OutputArchive m;
  module.save(m);
  a.write("model", m);
  write_archive(path, a);
}

std::string load_weights(const std::string& path, torch::nn::Module& module, const std::string& expected_kind) {
  torch::serialize::InputArchive a;
  read_archive(path, a);
  check_kind(a, path, expected_kind);
  load_module(a, module, path);
  return read_string(a, "config", path);
}

std::string weights_fingerprint(torch::nn::Module& module) {
  std::string all;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    all += name;
    all.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  return util::sha256_hex(all.data(), all.size());
}

void CheckpointPacer::save(const std::function<void()>& write) {
  const auto t0 = std::chrono::steady_clock::now();
  write();
  save_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  since_save_ = 0;
}

}  // namespace wristssl::train
