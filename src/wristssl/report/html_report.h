#pragma once
// The evaluation report as ONE self-contained HTML file: plain-language summary, ROC / PR /
// confusion / calibration / training-history / pretraining figures as inline SVG, galleries of the
// most confident errors (thumbnails as data: URIs), the metrics table with 95% intervals, the run
// table and a disclaimer. No network: no external fonts, scripts, style sheets or images. A tiny
// inline script checks, in a real browser, that every figure was drawn and writes "plots-ok:6/6"
// (or "plots-missing:<ids>") into the document title; without JavaScript the page reads the same.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wristssl/report/svg_plot.h"  // html_escape

namespace wristssl::report {

/// One classifier epoch. `phase`: "probe" (frozen backbone, linear head) or "finetune".
struct EpochRow {
  int epoch = 0;
  std::string phase;
  double train_loss = 0.0;
  double val_loss = 0.0;
  double val_accuracy = 0.0;  // fraction in [0, 1]
  double val_auroc = 0.0;
};

/// One SimCLR pretraining epoch.
struct PretrainRow {
  int epoch = 0;
  double loss = 0.0;          // NT-Xent
  double knn_accuracy = 0.0;  // fraction in [0, 1]; NaN when not measured that epoch
};

/// One image of an error gallery.
struct GalleryItem {
  std::string path;
  int label = 0;  // truth: 1 = fracture
  double score = 0.0;
  std::string thumbnail_png_base64;  // may be empty (no thumbnail shown)
  std::string heatmap_png_base64;    // Grad-CAM overlay (PNG, base64); may be empty (none shown)
};

/// Everything the report shows.
struct ReportInputs {
  std::string title;              // e.g. "wristssl: fracture detection report"
  nlohmann::json test_metrics;    // MetricsReport::to_json() on the TEST split (wristssl.metrics/1)
  nlohmann::json val_metrics;     // the same on validation, or null
  std::string threshold_rule;     // e.g. "youden", "sensitivity:0.95": chosen on validation, frozen
  std::vector<EpochRow> history;  // classifier epochs
  std::vector<PretrainRow> pretrain;         // SimCLR epochs; empty for a random-init baseline
  std::vector<GalleryItem> false_negatives;  // most confident errors, already sorted
  std::vector<GalleryItem> false_positives;
  nlohmann::json run_info;  // free-form key/values for the "Run" table
  std::string disclaimer;   // e.g. research use only, not a medical device
  /// What the bootstrap groups are, as a plural noun: "patients", "duplicate clusters", "groups".
  std::string group_name = "groups";
  /// "internal test split", or "external evaluation" (data the model never saw, threshold frozen in
  /// the model bundle).
  std::string evaluation_kind = "internal test split";
  /// Which model was evaluated, e.g. "model.wristssl sha256 ab12...; trained on ..."; may be empty.
  std::string model_description;
  /// How scores were calibrated, or null: {"method": "temperature", "temperature": 1.7,
  /// "ece_before": 0.34, "ece_after": 0.08, "fitted_on": "validation", "images": 157}.
  nlohmann::json calibration;
  /// The "refer to a radiologist" band, or null: {"lo": 0.41, "hi": 0.62, "rule": "...",
  /// "test_referred": 12, "test_images": 211, "accuracy_outside": 0.81}.
  nlohmann::json refer_band;
  /// Where the fracture is, measured against annotated boxes
  /// (metrics::LocalisationReport::to_json), or null; with examples whose thumbnails carry the true
  /// boxes (green) and the model's (white).
  nlohmann::json localisation;
  std::vector<GalleryItem> localised;
};

/// The figure ids, in page order; each is a `<figure id="...">` that the render check looks for.
const std::vector<std::string>& report_figure_ids();

/// Renders the page. Throws std::invalid_argument when test_metrics is not a wristssl.metrics/1
/// report (or val_metrics is neither null nor one).
std::string render_report_html(const ReportInputs& in);

/// render_report_html, written with util::atomic_write (creates parent folders).
void write_report(const std::string& path, const ReportInputs& in);

}  // namespace wristssl::report
