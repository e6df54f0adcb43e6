#pragma once
// Which options make a run the run it is: a checkpoint made with other values is not resumed, and
// the ranks of a distributed job must agree on them.

#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace wristssl::train {

/// Distributed: refuses, on every rank and naming the option, ranks whose `config` differs on
/// `keys` or whose training set has another size (they would train different models). Nothing
/// without a group.
void require_same_run(const nlohmann::json& config, const std::vector<std::string>& keys,
                      size_t training_images);
/// The same for a command's array of run keys (kRunKeys), as check_same_run takes them.
template <size_t N>
void require_same_run(const nlohmann::json& config, const char* const (&keys)[N],
                      size_t training_images) {
  require_same_run(config, std::vector<std::string>(std::begin(keys), std::end(keys)),
                   training_images);
}

/// Throws naming the checkpoint and each differing option when `saved` and `now` differ on `keys`.
/// A key that a checkpoint lacks (added later) matches when `now` holds its default (`defaults`,
/// the options' JSON with nothing set), which keeps the behaviour the checkpoint was made with.
template <size_t N>
void check_same_run(const nlohmann::json& saved, const nlohmann::json& now,
                    const char* const (&keys)[N], const std::string& checkpoint,
                    const nlohmann::json& defaults = nlohmann::json::object()) {
  std::string diff;
  for (const char* k : keys) {
    // Keys added after a checkpoint was made hold their old meaning there: sync_bn off, world_size
    // 1, or the option's default.
    const nlohmann::json v = now.value(k, nlohmann::json());
    if (!saved.contains(k) && (v == false || v == 1 || (defaults.contains(k) && defaults[k] == v)))
      continue;
    if (saved.value(k, nlohmann::json()) != v) {
      diff += std::string(diff.empty() ? "" : ", ") + k + ": " +
              saved.value(k, nlohmann::json()).dump() + " -> " +
              now.value(k, nlohmann::json()).dump();
    }
  }
  if (!diff.empty()) {
    throw std::runtime_error(checkpoint + " was made with other options (" + diff +
                             "); use another --out, or delete the checkpoint to start over");
  }
}

}  // namespace wristssl::train
