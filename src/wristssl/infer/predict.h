#pragma once
// `wristssl predict`: a model bundle applied to radiograph files and folders (PNG, JPEG, DICOM),
// one row per image, in batches, an unreadable file never stopping the others.

#include <iosfwd>
#include <string>
#include <vector>

#include "wristssl/data/boxes.h"
#include "wristssl/dicom/results.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/models/bundle.h"

namespace wristssl::infer {

struct PredictOptions {
  std::string model;                // the bundle (model.wristssl)
  std::vector<std::string> inputs;  // files and folders (recursively)
  std::string
      csv;  // path,probability,decision,error,boxes; standard output when csv and json are empty
  std::string json;  // the same rows with margin, warning, heatmap and the model's identity
  std::string heatmaps;   // folder for Grad-CAM overlays with the shown box (<stem>.gradcam.png)
  std::string dicom_out;  // for each DICOM input: a TID 1500 SR and a Secondary Capture (dicom/results.h)
  std::string uid_root = "2.25";  // root of the UIDs of those objects
  int batch_size = 0;    // images per forward pass; 0 = by input size (see auto_batch_size)
  int threads = 0;       // 0 = all cores
  std::string precision = "fp32";
  bool boxes = true;  // false: no boxes decoded (the JSON's and CSV's boxes stay empty)
};

struct PredictRow {
  std::string path;
  bool ok = false;
  double probability = 0, margin = 0;
  std::string decision;
  std::string error;    // unreadable: "kind: reason"
  std::string warning;  // e.g. a DICOM whose Modality is not a radiograph
  int width = 0, height = 0;           // of the decoded image
  std::vector<data::ScoredBox> boxes;  // normalised, strongest first, scores calibrated
  int shown_boxes = 0;                 // boxes shown (infer::shown_boxes; the CSV's "boxes")
  std::string heatmap;  // the overlay written, if any
  std::string dicom_report, dicom_capture;  // the DICOM results written, if any
};

/// How DICOM results name the model: the bundle's name, hash and decision rule; research-only unless
/// the manifest says "clinical_use": true.
dicom::ModelIdentity model_identity(const models::Bundle& bundle, const models::DecisionRule& rule);

/// What the DICOM results say about one image `width` x `height` pixels: the probability, the
/// decision and, as image regions, the boxes shown
/// (infer::shown_boxes, in pixel coordinates of the source image).
dicom::Finding finding(const Prediction& p, const models::DecisionRule& rule, int width,
                       int height);

/// The Grad-CAM picture for a DICOM Secondary Capture: long side at most this many pixels.
constexpr int kCaptureMaxSide = 1024;

/// The batch size predict uses by default for an input side: 512^2 / side^2 images, 1 to 32 (on
/// CPU, a 512 px ResNet-18 runs fastest one image at a time: larger batches spill out of cache).
int auto_batch_size(int input_size);

/// Every image file named by `inputs` (folders listed recursively, sorted; files as given). Throws
/// naming the input when it does not exist, or when nothing is found at all.
std::vector<std::string> collect_inputs(const std::vector<std::string>& inputs);

/// Runs predict; writes the CSV to `out` when neither csv nor json is set. Returns the rows in
/// input order.
std::vector<PredictRow> run_predict(const PredictOptions& options, std::ostream& out);

}  // namespace wristssl::infer
