#pragma once
// `wristssl study`: does self-supervised pretraining pay off, and by how much, with the power to tell.
//
// Grouped, stratified k-fold cross-validation on the labelled data, repeated over seeds; for each fold
// (test = the fold; validation carved from the others, grouped), each label fraction (a grouped,
// stratified share of the training labels) and each arm (a classifier recipe: from scratch, or on the
// SimCLR backbone with a probe and/or fine-tuning), a classifier is trained and its fold's test images
// scored. Each pretraining (one, or one per method) serves every fold: its pool is checked disjoint from every labelled
// image and from every group (patient, duplicate cluster) that holds one, so nothing evaluated is ever
// seen in pretraining. Then per arm and fraction: AUROC across folds x seeds with a 95% t-interval, and
// the paired comparison with the scratch arm on the same images (fold-paired differences; DeLong's test
// and a grouped paired bootstrap on the out-of-fold scores). Finally each arm is trained once more on
// all the labelled images at 100% of the labels and written as a model bundle, OUT/ARM/model.wristssl.
//
// Every classifier run resumes from its own checkpoint and a finished one is never redone, so the same
// command continues an interrupted study.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/train/pretrain.h"

namespace wristssl::train {

/// The configuration of the `--quick` preset: the same code on the bundled sample (frontal views
/// labelled, the other views as the pretraining pool), sized for about a minute on 2 cores.
nlohmann::json quick_study_config(const std::string& out);

/// Indices of `pool` records that may be pretrained on: not a labelled image (same canonical path) and
/// not in a group that holds one (groups compared by name when both datasets have a group column).
/// Writes the names of the excluded records' reasons to `excluded` when given.
std::vector<int> pretraining_pool(const data::Dataset& pool, const data::Dataset& labelled, bool compare_groups,
                                  std::vector<std::string>* excluded = nullptr);

/// Fine-tuning epochs at label fraction `fraction` for `epochs` at 100%: "same" keeps them; "sqrt"
/// multiplies by 1/sqrt(fraction) (fewer images per epoch, so more epochs; rounded, at least 1).
int epochs_for_fraction(int epochs, double fraction, const std::string& rule);

/// The options of the study's pretraining `name` (a key of "pretrainings", or "pretrain"): its section,
/// written to OUT/pretrain-NAME (OUT/pretrain for "pretrain"), on the study's pool split, cache and image
/// size, with the study's "seed" unless the section sets its own: the same recipe with another "seed" is
/// another draw of the pretraining, so arms on each show how much one draw moves the result. The caller
/// sets the pool's data options and the threads.
PretrainOptions study_pretrain_options(const nlohmann::json& config, const std::string& name);

/// The further paired comparisons of a config's "compare": a list of [arm, other arm] pairs, each arm in
/// `arms` (for example two draws of one pretraining recipe, or two augmentation presets). Each pair gets,
/// per fraction, the same fold-paired difference, DeLong test and grouped bootstrap on the out-of-fold
/// scores as every arm gets against the baseline. Throws on a malformed pair or an unknown arm.
std::vector<std::pair<std::string, std::string>> study_comparisons(const nlohmann::json& config,
                                                                  const std::vector<std::string>& arms);

/// What a study trains on, in augmented views: each pretraining an arm uses, 2 views x epochs x `pool`
/// images; and each cross-validation run, its fine-tuning epochs (after the epochs rule) x its share of the
/// `labelled` images (the training folds, less validation, at its label fraction). The study measures this
/// machine's compute configuration first (`wristssl tune`) when this passes should_tune_first's threshold.
double study_training_views(const nlohmann::json& config, size_t labelled, size_t pool);

/// Runs (or resumes) the study of a config (see configs/study_fracatlas.json and README). Writes
/// OUT/study.json, OUT/study.md (the table) and OUT/study.html (the table, the verdict and the
/// label-efficiency plot); returns the JSON.
nlohmann::json run_study(const nlohmann::json& config, int threads);

/// Renders the study's HTML page (self-contained: inline SVG plot) from the JSON that run_study writes.
std::string render_study_html(const nlohmann::json& study);

/// The study's table as Markdown (one row per arm and fraction).
std::string render_study_markdown(const nlohmann::json& study);

}  // namespace wristssl::train
