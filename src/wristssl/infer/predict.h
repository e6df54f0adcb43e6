#pragma once
// `wristssl predict`: a model bundle applied to radiograph files and folders (PNG, JPEG, DICOM),
// one row per image, in batches, an unreadable file never stopping the others.

#include <iosfwd>
#include <string>
#include <vector>

namespace wristssl::infer {

struct PredictOptions {
  std::string model;                // the bundle (model.wristssl)
  std::vector<std::string> inputs;  // files and folders (recursively)
  std::string csv;   // path,probability,decision,error; standard output when csv and json are empty
  std::string json;  // the same rows with margin, warning, heatmap and the model's identity
  std::string heatmaps;  // folder for Grad-CAM overlays (<stem>.gradcam.png)
  int batch_size = 16;
  int threads = 0;  // 0 = all cores
  std::string precision = "fp32";
};

struct PredictRow {
  std::string path;
  bool ok = false;
  double probability = 0, margin = 0;
  std::string decision;
  std::string error;    // unreadable: "kind: reason"
  std::string warning;  // e.g. a DICOM whose Modality is not a radiograph
  std::string heatmap;  // the overlay written, if any
};

/// Every image file named by `inputs` (folders listed recursively, sorted; files as given). Throws
/// naming the input when it does not exist, or when nothing is found at all.
std::vector<std::string> collect_inputs(const std::vector<std::string>& inputs);

/// Runs predict; writes the CSV to `out` when neither csv nor json is set. Returns the rows in
/// input order.
std::vector<PredictRow> run_predict(const PredictOptions& options, std::ostream& out);

}  // namespace wristssl::infer
