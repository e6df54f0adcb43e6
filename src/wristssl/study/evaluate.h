#pragma once
// Evaluation of a trained model with every metric and its 95% interval, the per-image scores and
// the HTML report: on a part of its own run's split (internal), or on a labelled dataset it never
// saw (external), always at the threshold frozen in the model bundle, never re-tuned on the data
// scored.

#include <nlohmann/json.hpp>
#include <string>

#include "wristssl/data/dataset.h"

namespace wristssl::study {

struct EvaluateOptions {
  // Internal: a classifier run folder and the part of its split to score.
  std::string run;
  std::string part = "test";  // test, val or train
  // External: a model bundle and a labelled dataset (any --data layout).
  std::string model;
  data::DatasetOptions data;
  std::string out;  // external: output folder (default evaluation-<model name>)
  std::string cache_dir = ".wristssl-cache";
  std::string precision =
      "fp32";  // inference precision: fp32 (default: scores independent of batching), bf16, auto
  int bootstrap = 2000;
  int threads = 0;
  bool report = true;  // also write report.html
  int gallery = 8;     // most confident errors shown per kind, with Grad-CAM
  // Where the fracture is: measured when annotated boxes are known (data.boxes, or for --run the
  // run's own config's). box_drop > 0 overrides the bundle's decoding (models/box_decoding.h), for
  // choosing it on validation parts.
  double box_drop = 0;
};

/// Scores the chosen split part of a run (writing the run's bundle first when missing), or, with
/// `model` set, every readable image of `data`. Writes scores_<part>.csv
/// (path,group,label,score,margin,decision), metrics_<part>.json and report.html (part "external"
/// for external data), and with boxes boxes_<part>.csv (metrics/localisation.h) and the
/// localisation figures in the metrics. Returns the metrics JSON.
nlohmann::json run_evaluate(const EvaluateOptions& options);

}  // namespace wristssl::study
