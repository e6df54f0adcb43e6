#pragma once
// `wristssl study`: does self-supervised pretraining pay off, and by how much, with the power to
// tell.
//
// Grouped, stratified k-fold cross-validation on the labelled data, repeated over seeds; for each
// fold (test = the fold; validation carved from the others, grouped), each label fraction (a
// grouped, stratified share of the training labels) and each arm (a classifier recipe: from
// scratch, or on a pretrained backbone with a probe and/or fine-tuning), a classifier is trained
// and its fold's test images scored. Each pretraining serves every fold: its pool is checked
// disjoint from every labelled image and from every group (patient, duplicate cluster) that holds
// one, so nothing evaluated is ever seen in pretraining. Then per arm and fraction: AUROC across
// folds x seeds with a 95% t-interval, and the paired comparison with the baseline arm on the same
// images (study/analysis.h). Finally each arm is trained once more on all the labelled images at
// 100% of the labels and written as a model bundle, OUT/ARM/model.wristssl.
//
// Every classifier run resumes from its own checkpoint and a finished one is never redone, so the
// same command continues an interrupted study.

#include <nlohmann/json.hpp>

#include "wristssl/study/config.h"

namespace wristssl::study {

/// Runs (or resumes) the study. Writes OUT/study.json, OUT/study.md (the table) and OUT/study.html
/// (the table, the verdict and the label-efficiency plot); returns the JSON.
nlohmann::json run_study(const StudyConfig& config, int threads);

}  // namespace wristssl::study
