#pragma once
// From a finished classifier run to a model bundle: the decision rule fitted on validation
// (temperature scaling, calibrated threshold, refer band) and everything the bundle records about
// the run.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wristssl/models/bundle.h"
#include "wristssl/models/classifier.h"

namespace wristssl::train {

/// The "decision" block of a bundle, fitted on validation: temperature scaling of the margins
/// (z_fracture - z_no_fracture), the frozen threshold `threshold_raw` (a softmax probability chosen
/// by `rule`) moved to the calibrated scale, and the refer band holding `refer_fraction` of the
/// validation images nearest to it; with the expected calibration error before and after.
nlohmann::json fit_decision(const std::vector<int>& val_labels,
                            const std::vector<double>& val_margins, double threshold_raw,
                            const std::string& rule, double refer_fraction);

/// What a bundle records besides the weights.
struct BundleInfo {
  std::string name;
  std::vector<std::string> class_names = {"no_fracture", "fracture"};
  int image_size = 512, input_size = 512;
  float mean = 0.5f, stdev = 0.25f;
  nlohmann::json decision;  // fit_decision's block
  nlohmann::json training = nlohmann::json::object();
  nlohmann::json test_metrics;  // null until the test part is evaluated
};

/// The bundle of `model` with `info`: manifest (versions, architecture, preprocessing, decision,
/// training, test metrics, intended use) and tensors.
models::Bundle make_bundle(models::ClassifierImpl& model, const BundleInfo& info);

/// A bundle of a randomly initialised classifier (seeded; random batch-norm statistics so that
/// folding them is exercised) with a fixed decision rule: temperature 1.5, calibrated threshold
/// sigmoid(0.2 / 1.5), refer band +-0.3 around it in calibrated log-odds. For benchmarks and tests:
/// it detects nothing.
models::Bundle untrained_bundle(int image_size, int input_size, uint64_t seed,
                                const std::string& name = "untrained",
                                models::Pooling pooling = {});

/// The bundle of a finished classifier run folder (config.json, model.pt, threshold.json with its
/// decision block; metrics_test.json when the test part was evaluated). `name` defaults to the
/// folder's name. Throws naming the run and what is missing.
models::Bundle bundle_from_run(const std::string& run, const std::string& name = "");

/// bundle_from_run written to `out` (default <run>/model.wristssl); returns the bundle written.
models::Bundle write_run_bundle(const std::string& run, const std::string& out = "",
                                const std::string& name = "");

/// What `wristssl bundle` makes: from exactly one of a finished run, a list of member bundles (an
/// ensemble, models/ensemble.h) or an existing bundle (stored again, e.g. at float16).
struct BundleRequest {
  std::string run;                   // a finished classifier run
  std::vector<std::string> members;  // bundle files: an ensemble of them
  std::string model;                 // a bundle file
  std::string out;   // the bundle to write (default <run>/model.wristssl; required otherwise)
  std::string name;  // recorded name (default: the run folder's, the first member's + "-ensemble")
  std::string storage = "float32";  // or "float16"
};

/// Makes and writes the bundle of `request`; throws naming what is wrong with it.
models::Bundle write_requested_bundle(const BundleRequest& request);

}  // namespace wristssl::train
