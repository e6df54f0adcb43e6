#include "wristssl/infer/export.h"

#include <torch/script.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <sstream>

#include "wristssl/infer/onnx_export.h"
#include "wristssl/models/ensemble.h"
#include "wristssl/util/fs.h"

namespace wristssl::infer {
namespace {

using nlohmann::json;

// The batch norm that follows a convolution, by torchvision's names.
std::string bn_of(const std::string& conv) {
  if (conv == "conv1") return "bn1";
  const auto dot = conv.rfind('.');
  const std::string base = conv.substr(0, dot + 1), last = conv.substr(dot + 1);
  if (last == "conv1") return base + "bn1";
  if (last == "conv2") return base + "bn2";
  if (last == "0") return base + "1";  // downsample.0 -> downsample.1
  throw std::invalid_argument("no batch norm known after " + conv);
}

void fold(FoldedConv& c, const std::map<std::string, torch::Tensor>& t) {
  auto get = [&](const std::string& name) {
    const auto it = t.find(name);
    if (it == t.end()) throw std::runtime_error("fold_batch_norm: the model has no " + name);
    return it->second.detach().to(torch::kCPU, torch::kDouble);
  };
  const std::string bn = bn_of(c.name);
  const torch::Tensor w = get(c.name + ".weight");
  const torch::Tensor scale =
      get(bn + ".weight") / (get(bn + ".running_var") + 1e-5).sqrt();  // BatchNorm2d eps
  const torch::Tensor wf = (w * scale.view({-1, 1, 1, 1})).to(torch::kFloat).contiguous();
  const torch::Tensor bf =
      (get(bn + ".bias") - get(bn + ".running_mean") * scale).to(torch::kFloat).contiguous();
  TORCH_CHECK(wf.numel() == static_cast<int64_t>(c.weight.size()), c.name, ": ", wf.sizes(),
              " does not match the layout");
  std::copy(wf.data_ptr<float>(), wf.data_ptr<float>() + wf.numel(), c.weight.begin());
  std::copy(bf.data_ptr<float>(), bf.data_ptr<float>() + bf.numel(), c.bias.begin());
}

std::string attr(const std::string& layer, const char* what) {
  std::string s = layer;
  for (char& ch : s) {
    if (ch == '.') ch = '_';
  }
  return s + "_" + what;
}

// The manifest without its tensor list: what exports carry as metadata.
json manifest_summary(const models::Bundle& b) {
  json m = b.manifest;
  m.erase("tensors");
  m["bundle_sha256"] = b.sha256;
  m["bundle_id"] = b.id();
  return m;
}

models::Classifier load(const models::Bundle& b) {
  if (models::is_ensemble(b)) {
    throw std::runtime_error(
        b.path + ": an ensemble of " + std::to_string(b.manifest.at("members").size()) +
        " models cannot be exported as one network (each export holds one ResNet-18); export the " +
        "member bundles it was made from and average their calibrated probabilities");
  }
  models::Classifier model = models::classifier_from_bundle(b);
  model->eval();
  return model;
}

}  // namespace

FoldedResNet18 fold_batch_norm(models::ClassifierImpl& model) {
  std::map<std::string, torch::Tensor> t;
  for (const auto& p : model.backbone->named_parameters()) t[p.key()] = p.value();
  for (const auto& p : model.backbone->named_buffers()) t[p.key()] = p.value();
  FoldedResNet18 net = resnet18_layout(1, model.num_classes);
  fold(net.conv1, t);
  for (FoldedBlock& b : net.blocks) {
    fold(b.conv1, t);
    fold(b.conv2, t);
    if (b.downsample) fold(*b.downsample, t);
  }
  const torch::Tensor fw = model.head->weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const torch::Tensor fb = model.head->bias.detach().to(torch::kCPU, torch::kFloat).contiguous();
  net.fc_weight.assign(fw.data_ptr<float>(), fw.data_ptr<float>() + fw.numel());
  net.fc_bias.assign(fb.data_ptr<float>(), fb.data_ptr<float>() + fb.numel());
  net.pooling = model.pooling.kind;
  net.sharpness = model.pooling.sharpness;
  validate(net);
  return net;
}

std::string torchscript_source(const FoldedResNet18& net) {
  std::ostringstream s;
  auto conv = [&](const std::string& in, const FoldedConv& c) {
    return "torch.conv2d(" + in + ", self." + attr(c.name, "weight") + ", self." +
           attr(c.name, "bias") + ", [" + std::to_string(c.stride) + ", " +
           std::to_string(c.stride) + "], [" + std::to_string(c.padding) + ", " +
           std::to_string(c.padding) + "])";
  };
  // feature_map: the last block's activations [N, 512, H/32, W/32] (for Grad-CAM); forward: the
  // logits.
  s << "def feature_map(self, x: Tensor) -> Tensor:\n";
  s << "    x = torch.relu(" << conv("x", net.conv1) << ")\n";
  s << "    x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1])\n";
  for (const FoldedBlock& b : net.blocks) {
    s << "    y = torch.relu(" << conv("x", b.conv1) << ")\n";
    s << "    y = " << conv("y", b.conv2) << "\n";
    s << "    x = torch.relu(y + " << (b.downsample ? conv("x", *b.downsample) : std::string("x"))
      << ")\n";
  }
  s << "    return x\n\n";
  s << "def forward(self, x: Tensor) -> Tensor:\n";
  if (net.pooling == "lse") {
    // models::ClassifierImpl::logits_from_map: the margin at every location, log-sum-exp pooled.
    std::ostringstream r;
    r.precision(17);
    r << net.sharpness;
    s << "    f = self.feature_map(x)\n";
    s << "    w = self.fc_weight[1] - self.fc_weight[0]\n";
    s << "    m = torch.sum(f * w.view(1, -1, 1, 1), 1).flatten(1) + (self.fc_bias[1] - "
         "self.fc_bias[0])\n";
    s << "    mx = torch.amax(m, 1, True)\n";
    s << "    p = torch.log(torch.mean(torch.exp((m - mx) * " << r.str() << "), 1)) / " << r.str()
      << " + mx.squeeze(1)\n";
    s << "    return torch.stack([torch.zeros_like(p), p], 1)\n";
    return s.str();
  }
  s << "    x = torch.mean(self.feature_map(x), [2, 3])\n";
  s << "    return torch.matmul(x, self.fc_weight.t()) + self.fc_bias\n";
  return s.str();
}

torch::jit::Module torchscript_module(const models::Bundle& bundle) {
  models::Classifier model = load(bundle);
  const FoldedResNet18 net = fold_batch_norm(*model);
  torch::jit::Module m("__torch__.wristssl.ResNet18Folded");
  auto add = [&](const FoldedConv& c) {
    const std::vector<int64_t> shape{c.out_channels, c.in_channels, c.kernel, c.kernel};
    m.register_parameter(attr(c.name, "weight"), torch::tensor(c.weight).view(shape), false);
    m.register_parameter(attr(c.name, "bias"), torch::tensor(c.bias), false);
  };
  add(net.conv1);
  for (const FoldedBlock& b : net.blocks) {
    add(b.conv1);
    add(b.conv2);
    if (b.downsample) add(*b.downsample);
  }
  m.register_parameter(
      "fc_weight", torch::tensor(net.fc_weight).view({net.num_classes, kResNet18Features}), false);
  m.register_parameter("fc_bias", torch::tensor(net.fc_bias), false);
  m.define(torchscript_source(net));
  m.eval();
  return m;
}

void export_torchscript(const models::Bundle& bundle, const std::string& path) {
  torch::jit::Module m = torchscript_module(bundle);
  torch::jit::ExtraFilesMap extra{{"wristssl.json", manifest_summary(bundle).dump(2)}};
  std::ostringstream bytes;
  m.save(bytes, extra);
  util::atomic_write(path, bytes.str());
}

void export_onnx(const models::Bundle& bundle, const std::string& path) {
  models::Classifier model = load(bundle);
  const json& d = bundle.manifest.at("decision");
  const json& p = bundle.manifest.at("preprocessing");
  const std::map<std::string, std::string> meta = {
      {"wristssl.bundle_id", bundle.id()},
      {"wristssl.bundle_sha256", bundle.sha256},
      {"wristssl.version", bundle.manifest.value("wristssl_version", std::string())},
      {"wristssl.output", "logits [N, 2]: index 0 no fracture, 1 fracture; no softmax"},
      {"wristssl.preprocessing", p.dump()},
      {"wristssl.decision", d.dump()},
      {"wristssl.intended_use", bundle.manifest.value("intended_use", std::string())}};
  write_onnx(fold_batch_norm(*model), meta, path);
}

void export_torchvision(const models::Bundle& bundle, const std::string& path) {
  models::Classifier model = load(bundle);
  if (model->pooling.kind != "mean") {
    throw std::runtime_error(
        bundle.path + ": a torchvision state dict holds a ResNet with average pooling; this " +
        "model pools by " + model->pooling.kind +
        " (export torchscript or onnx, which carry the pooling)");
  }
  c10::Dict<std::string, torch::Tensor> state;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    state.insert(name, t.detach().to(torch::kCPU).contiguous());
  };
  for (const auto& p : model->backbone->named_parameters()) add(p.key(), p.value());
  for (const auto& p : model->backbone->named_buffers()) {
    // The bundle has no batch counters; torchvision's strict loading wants them.
    add(p.key(), p.key().find("num_batches_tracked") != std::string::npos
                     ? torch::zeros({}, torch::kLong)
                     : p.value());
  }
  add("fc.weight", model->head->weight);
  add("fc.bias", model->head->bias);
  const std::vector<char> bytes = torch::pickle_save(state);
  util::atomic_write(path, std::string_view(bytes.data(), bytes.size()));
}

void export_model(const std::string& bundle_path, const std::string& format,
                  const std::string& out) {
  if (format != "torchscript" && format != "onnx" && format != "torchvision") {
    throw std::runtime_error("unknown export format '" + format +
                             "' (torchscript, onnx, torchvision)");
  }
  if (out.empty()) throw std::runtime_error("export needs --out FILE");
  const models::Bundle b = models::read_bundle(bundle_path);
  if (format == "torchscript") export_torchscript(b, out);
  if (format == "onnx") export_onnx(b, out);
  if (format == "torchvision") export_torchvision(b, out);
}

}  // namespace wristssl::infer
