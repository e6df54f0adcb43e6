#pragma once
// Several classifiers in one bundle (an ensemble): for instance the fold models of a
// cross-validation, or models trained from different seeds. Each member keeps its own weights and
// its own calibration (temperature), and the ensemble's probability is the mean of the members'
// calibrated probabilities. The ensemble's decision rule (temperature 1, threshold and refer band)
// then applies to that mean, as a single model's rule applies to its own.
//
// In the file (models/bundle.h) a member's tensors are named "members.<k>.<tensor>", and the
// manifest's "members" list holds, for each, its name, the SHA-256 of the bundle it came from, its
// decision rule, its training summary and its tensor count. An ordinary bundle has no "members".

#include <torch/types.h>

#include <string>
#include <vector>

#include "wristssl/models/bundle.h"

namespace wristssl::models {

/// Whether `bundle` is an ensemble (its manifest lists "members").
bool is_ensemble(const Bundle& bundle);

/// The bundles to score with: {bundle} for an ordinary one; for an ensemble, one bundle per member
/// (the ensemble's manifest with the member's name, decision and training; the member's tensors
/// under their own names). Throws BundleError("members") naming the member when its entry is
/// malformed or its weights are missing or incomplete, or when a tensor belongs to no member.
std::vector<Bundle> bundle_members(const Bundle& bundle);

/// An ensemble of ordinary bundles with the same architecture, preprocessing and class names (at
/// least two; at most kMaxMembers). Its threshold and refer band are the means of the members'
/// (calibrated probabilities; validation data of different folds cannot be pooled for a new fit);
/// its temperature is 1; its "created" is left to the writer. Throws std::invalid_argument naming
/// the member that does not fit.
Bundle make_ensemble(const std::vector<Bundle>& members, const std::string& name);

constexpr size_t kMaxMembers = 16;

/// The ensemble's margin for each image from the members' margins [N] (raw logit margins) and
/// rules: logit(mean_k sigmoid(m_k / T_k)), computed in log space (no overflow for any finite
/// margin). One member: its margin unchanged (its own rule then calibrates it). Returns [N] double.
torch::Tensor combine_margins(const std::vector<torch::Tensor>& margins,
                              const std::vector<DecisionRule>& rules);

}  // namespace wristssl::models
