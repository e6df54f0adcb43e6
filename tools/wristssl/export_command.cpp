// `wristssl export`: a bundle as TorchScript, ONNX or a torchvision state dict.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/infer/export.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, ExportArgs& a) {
  auto* cmd = app.add_subcommand(
      "export", "export a bundle to TorchScript, ONNX or a torchvision state dict");
  cmd->add_option("--model", a.model, "model bundle (model.wristssl)")->required();
  cmd->add_option("--format", a.format, "torchscript | onnx | torchvision")->required();
  cmd->add_option("--out", a.out, "output file")->required();
  return cmd;
}

int run(const ExportArgs& a) {
  infer::export_model(a.model, a.format, a.out);
  std::cout << a.format << ": " << a.out << "\n";
  return 0;
}

}  // namespace

ExportArgs parse_export(const std::vector<std::string>& args) {
  ExportArgs a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return a;
}

Command add_export_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<ExportArgs>();
  return {add_options(app, *a), [a] { return run(*a); }};
}

}  // namespace wristssl::cli
