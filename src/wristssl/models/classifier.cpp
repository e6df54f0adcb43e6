#include "wristssl/models/classifier.h"

#include <map>
#include <string>

namespace wristssl::models {

nlohmann::json Pooling::to_json() const { return {{"kind", kind}, {"sharpness", sharpness}}; }

Pooling Pooling::from_json(const nlohmann::json& j) {
  Pooling p;
  if (j.is_null()) return p;
  p.kind = j.value("kind", std::string("mean"));
  p.sharpness = j.value("sharpness", p.sharpness);
  if (p.kind != "mean" && p.kind != "lse") {
    throw std::runtime_error("pooling '" + p.kind + "' is not mean or lse");
  }
  if (p.kind == "lse" && !(p.sharpness > 0 && p.sharpness <= 100)) {
    throw std::runtime_error("lse pooling needs a sharpness in (0, 100], got " +
                             std::to_string(p.sharpness));
  }
  return p;
}

ClassifierImpl::ClassifierImpl(int64_t n, Pooling p) : pooling(std::move(p)), num_classes(n) {
  reset();
}

void ClassifierImpl::reset() {
  TORCH_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, got ", num_classes);
  Pooling::from_json(pooling.to_json());  // throws on a kind or sharpness out of range
  TORCH_CHECK(pooling.kind == "mean" || num_classes == 2, "lse pooling needs 2 classes, got ",
              num_classes);
  backbone = register_module("backbone", ResNet18(ResNetOptions().in_channels(1).num_classes(0)));
  head = register_module("head", torch::nn::Linear(ResNet18Impl::kFeatureDim, num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  if (pooling.kind == "mean") return head(backbone->features(x));
  return logits_from_map(backbone->feature_map(x));
}

torch::Tensor ClassifierImpl::margin_map(const torch::Tensor& f) {
  TORCH_CHECK(num_classes == 2 && f.dim() == 4, "margin_map: a binary model and [N, C, h, w], got ",
              f.sizes());
  const torch::Tensor w = (head->weight[1] - head->weight[0]).to(f.scalar_type());  // [512]
  const torch::Tensor b = (head->bias[1] - head->bias[0]).to(f.scalar_type());
  return (f * w.view({1, -1, 1, 1})).sum(1) + b;  // [N, h, w]
}

torch::Tensor ClassifierImpl::logits_from_map(const torch::Tensor& f) {
  if (pooling.kind == "mean") return head(f.mean({2, 3}));
  // (1/r) log mean exp(r m), computed stably about the maximum, in fp32.
  const torch::Tensor m = margin_map(f).flatten(1).to(torch::kFloat);  // [N, h * w]
  const double r = pooling.sharpness;
  const torch::Tensor mx = std::get<0>(m.max(1, /*keepdim=*/true));
  const torch::Tensor pooled = ((m - mx) * r).exp().mean(1).log() / r + mx.squeeze(1);  // [N]
  return torch::stack({torch::zeros_like(pooled), pooled}, 1);
}

void ClassifierImpl::freeze_backbone(bool frozen) {
  for (auto& p : backbone->parameters()) p.set_requires_grad(!frozen);
}

namespace {

bool is_counter(const std::string& name) {
  const std::string tail = "num_batches_tracked";
  return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::vector<NamedTensor> bundle_tensors(ClassifierImpl& model) {
  std::vector<NamedTensor> out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    if (is_counter(name)) return;
    const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
    NamedTensor nt{name, c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())};
    out.push_back(std::move(nt));
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  return out;
}

void load_bundle_tensors(ClassifierImpl& model, const Bundle& bundle) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const auto& t : bundle.tensors) by_name[t.name] = &t;
  torch::NoGradGuard no_grad;
  size_t used = 0;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    if (is_counter(name)) return;
    const auto it = by_name.find(name);
    if (it == by_name.end()) throw BundleError(bundle.path, "tensors", "no tensor " + name);
    if (it->second->shape != dst.sizes().vec()) {
      throw BundleError(bundle.path, "tensors", name + " has shape " + c10::str(c10::IntArrayRef(it->second->shape)) +
                                                    ", the model expects " + c10::str(dst.sizes()));
    }
    const torch::Tensor src = torch::from_blob(const_cast<float*>(it->second->values.data()), dst.sizes(), torch::kFloat);
    dst.copy_(src);
    ++used;
  };
  for (auto& p : model.named_parameters()) copy(p.key(), p.value());
  for (auto& b : model.named_buffers()) copy(b.key(), b.value());
  if (used != bundle.tensors.size()) {
    throw BundleError(bundle.path, "tensors",
                      std::to_string(bundle.tensors.size() - used) + " tensors do not belong to a ResNet-18 classifier");
  }
}

Classifier classifier_from_bundle(const Bundle& bundle) {
  const nlohmann::json& a = bundle.manifest.value("architecture", nlohmann::json::object());
  if (a.value("name", std::string()) != "resnet18" || a.value("in_channels", 0) != 1) {
    throw BundleError(bundle.path, "manifest", "architecture " + a.dump() + " is not a 1-channel resnet18");
  }
  const int64_t classes = a.value("num_classes", int64_t{0});
  if (classes < 2 || classes > 1000) throw BundleError(bundle.path, "manifest", "num_classes " + std::to_string(classes));
  Pooling pooling;
  try {
    pooling = Pooling::from_json(a.value("pooling", nlohmann::json()));
  } catch (const std::exception& e) {
    throw BundleError(bundle.path, "manifest", e.what());
  }
  Classifier model(classes, pooling);
  load_bundle_tensors(*model, bundle);
  model->eval();
  return model;
}

}  // namespace wristssl::models
