#include "wristssl/models/classifier.h"

#include <map>
#include <string>

namespace wristssl::models {

ClassifierImpl::ClassifierImpl(int64_t n) : num_classes(n) { reset(); }

void ClassifierImpl::reset() {
  TORCH_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, got ", num_classes);
  backbone = register_module("backbone", ResNet18(ResNetOptions().in_channels(1).num_classes(0)));
  head = register_module("head", torch::nn::Linear(ResNet18Impl::kFeatureDim, num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return head(backbone->features(x)); }

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
  Classifier model(classes);
  load_bundle_tensors(*model, bundle);
  model->eval();
  return model;
}

}  // namespace wristssl::models
