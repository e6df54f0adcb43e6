// `wristssl predict`: score radiographs with a model bundle.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/infer/predict.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, infer::PredictOptions& o) {
  auto* cmd = app.add_subcommand(
      "predict", "score radiographs (PNG, JPEG, DICOM files or folders) with a model bundle");
  cmd->add_option("--model", o.model, "model bundle (default: the shipped model, README)");
  cmd->add_option("inputs", o.inputs, "image files and folders (recursive)")->required();
  cmd->add_option("--csv", o.csv,
                  "write path,probability,decision,error here (default: standard output)");
  cmd->add_option("--json", o.json,
                  "write the rows as JSON, with margins, warnings and the model's identity");
  cmd->add_option("--heatmaps", o.heatmaps,
                  "folder for Grad-CAM overlays with the boxes shown (<stem>.gradcam.png)");
  cmd->add_option("--dicom-out", o.dicom_out,
                  "for each DICOM input, write a TID 1500 structured report (with the boxes as "
                  "image regions) and a secondary capture (Grad-CAM and boxes burnt in) here");
  cmd->add_option("--uid-root", o.uid_root,
                  "root of the new objects' UIDs (default 2.25: UUID-derived)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size,
                  "images per forward pass (0: by input size, 1 at 512 px)")
      ->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp32 | bf16 | auto")->capture_default_str();
  cmd->add_flag("!--no-boxes", o.boxes,
                "do not decode where the fracture is (boxes in the JSON, the CSV, the heatmaps "
                "and the DICOM results)");
  return cmd;
}

}  // namespace

infer::PredictOptions parse_predict(const std::vector<std::string>& args) {
  infer::PredictOptions o;
  parse_command(args, [&](CLI::App& app) { return add_options(app, o); });
  return o;
}

Command add_predict_command(CLI::App& app, const Globals& g) {
  auto o = std::make_shared<infer::PredictOptions>();
  return {add_options(app, *o), [o, &g] {
            o->threads = g.threads;
            infer::run_predict(*o, std::cout);
            return 0;
          }};
}

}  // namespace wristssl::cli
