#include "wristssl/models/ensemble.h"

#include <torch/torch.h>

#include <cmath>

namespace wristssl::models {
namespace {

using nlohmann::json;

std::string member_prefix(size_t k) { return "members." + std::to_string(k) + "."; }

}  // namespace

bool is_ensemble(const Bundle& b) { return b.manifest.contains("members"); }

std::vector<Bundle> bundle_members(const Bundle& b) {
  if (!is_ensemble(b)) return {b};
  const json& list = b.manifest.at("members");
  if (!list.is_array() || list.empty() || list.size() > kMaxMembers) {
    throw BundleError(
        b.path, "members",
        "'members' is not a list of 1 to " + std::to_string(kMaxMembers) + " entries");
  }
  std::vector<Bundle> out(list.size());
  std::vector<size_t> want(list.size());
  for (size_t k = 0; k < list.size(); ++k) {
    const json& e = list[k];
    Bundle& m = out[k];
    m.manifest = b.manifest;
    m.manifest.erase("members");
    m.manifest.erase("tensors");
    try {
      m.manifest["name"] = e.at("name").get<std::string>();
      m.manifest["decision"] = e.at("decision");
      DecisionRule::from_json(e.at("decision"));
      m.manifest["training"] = e.value("training", json());
      m.manifest["test_metrics"] = e.value("test_metrics", json());
      m.sha256 = e.at("source_sha256").get<std::string>();
      want[k] = e.at("tensors").get<size_t>();
    } catch (const std::exception& err) {
      throw BundleError(b.path, "members",
                        "member " + std::to_string(k) + ": malformed entry: " + err.what());
    }
    m.manifest["member_of"] = b.id();
    m.path = b.path + "#member" + std::to_string(k);
    m.storage = b.storage;
  }
  for (const NamedTensor& t : b.tensors) {
    bool placed = false;
    for (size_t k = 0; k < out.size() && !placed; ++k) {
      const std::string p = member_prefix(k);
      if (t.name.compare(0, p.size(), p) == 0) {
        NamedTensor nt = t;
        nt.name = t.name.substr(p.size());
        out[k].tensors.push_back(std::move(nt));
        placed = true;
      }
    }
    if (!placed) {
      throw BundleError(b.path, "members", "tensor " + t.name + " belongs to no member");
    }
  }
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k].tensors.size() != want[k]) {
      throw BundleError(
          b.path, "members",
          "member " + std::to_string(k) + " (" + out[k].manifest.value("name", std::string()) +
              "): its weights are " +
              (out[k].tensors.empty() ? std::string("missing")
                                      : "incomplete (" + std::to_string(out[k].tensors.size()) +
                                            " of " + std::to_string(want[k]) + " tensors)"));
    }
  }
  return out;
}

Bundle make_ensemble(const std::vector<Bundle>& members, const std::string& name) {
  if (members.size() < 2 || members.size() > kMaxMembers) {
    throw std::invalid_argument("an ensemble needs 2 to " + std::to_string(kMaxMembers) +
                                " member bundles, got " + std::to_string(members.size()));
  }
  const json& first = members[0].manifest;
  Bundle e;
  e.manifest = first;
  for (const char* k : {"tensors", "decision", "training", "test_metrics", "format",
                        "format_version", "member_of", "created"})
    e.manifest.erase(k);
  e.manifest["name"] = name;
  json list = json::array();
  double thr = 0, lo = 0, hi = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const Bundle& m = members[k];
    const std::string who = m.path.empty() ? "member " + std::to_string(k) : m.path;
    if (is_ensemble(m)) throw std::invalid_argument(who + " is itself an ensemble");
    for (const char* key : {"architecture", "preprocessing", "class_names"}) {
      if (m.manifest.value(key, json()) != first.value(key, json())) {
        throw std::invalid_argument(
            who + ": its " + std::string(key) + " differs from " +
            (members[0].path.empty() ? "the first member's" : members[0].path + "'s"));
      }
    }
    const DecisionRule r = DecisionRule::from_json(m.manifest.at("decision"));
    thr += r.threshold;
    lo += r.refer_lo;
    hi += r.refer_hi;
    list.push_back({{"name", m.manifest.value("name", std::string("model"))},
                    {"source_sha256", m.sha256},
                    {"decision", m.manifest.at("decision")},
                    {"training", m.manifest.value("training", json())},
                    {"test_metrics", m.manifest.value("test_metrics", json())},
                    {"tensors", m.tensors.size()}});
    for (const NamedTensor& t : m.tensors) {
      NamedTensor nt = t;
      nt.name = member_prefix(k) + t.name;
      e.tensors.push_back(std::move(nt));
    }
  }
  const double n = static_cast<double>(members.size());
  e.manifest["members"] = list;
  e.manifest["decision"] = {
      {"threshold", thr / n},
      {"rule", "the mean of the members' frozen thresholds"},
      {"chosen_on", "the members' own validation parts"},
      {"combine", "mean of the members' calibrated probabilities"},
      {"calibration", {{"method", "members"}, {"temperature", 1.0}}},
      {"refer_band", {{"lo", lo / n}, {"hi", hi / n}, {"rule", "the mean of the members' bands"}}}};
  e.manifest["training"] = {{"ensemble_of", members.size()}};
  return e;
}

torch::Tensor combine_margins(const std::vector<torch::Tensor>& margins,
                              const std::vector<DecisionRule>& rules) {
  TORCH_CHECK(!margins.empty() && margins.size() == rules.size(),
              "combine_margins: one rule per member's margins");
  if (margins.size() == 1) return margins[0].to(torch::kDouble);
  std::vector<torch::Tensor> z;
  for (size_t k = 0; k < margins.size(); ++k)
    z.push_back(margins[k].to(torch::kDouble) / rules[k].temperature);
  const torch::Tensor s = torch::stack(z, 0);  // [K, N]
  // log mean sigmoid(z) - log mean sigmoid(-z); the log K terms cancel.
  return torch::logsumexp(torch::log_sigmoid(s), 0) - torch::logsumexp(torch::log_sigmoid(-s), 0);
}

}  // namespace wristssl::models
