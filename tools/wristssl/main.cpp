// wristssl: the command-line program. main sets up the process and the global options, registers
// the commands (<command>_command.cpp, commands.h) and runs the one named; the commands parse their
// own options and call the library.
#include <torch/cuda.h>
#include <torch/version.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "wristssl/distributed/group.h"
#include "wristssl/distributed/launch.h"
#include "wristssl/io/image.h"
#include "wristssl/util/allocator.h"
#include "wristssl/util/device.h"
#include "wristssl/util/threads.h"
#include "wristssl/version.h"

namespace {

using namespace wristssl;

// The names the unknown-command message lists, in its order; "launch" is run before parsing.
const char* const kCommands[] = {"inspect", "scan",   "pretrain", "train",  "evaluate",
                                 "metrics", "run",    "predict",  "bundle", "export",
                                 "serve",   "listen", "launch",   "study",  "tune"};

std::string version_text() {
  std::string s =
      std::string("wristssl ") + kVersion + "\nLibTorch " + TORCH_VERSION + "\nfeatures:";
  s += torch::cuda::is_available()
           ? " CUDA (" + std::to_string(torch::cuda::device_count()) + " devices)"
           : " CUDA (not available)";
  s += util::has_native_bf16(c10::kCPU) ? ", bf16 (native on this CPU)"
                                        : ", bf16 (not native on this CPU: fp32 by default)";
  s += ", JPEG 2000 (OpenJPEG), DICOM (DCMTK), PNG 8/16-bit, JPEG, ONNX export, TorchScript export";
  std::string backends;
  for (const std::string& b : distributed::available_backends())
    backends += (backends.empty() ? "" : " ") + b;
  s += ", distributed (" + (backends.empty() ? std::string("none") : backends) + ")\n";
  return s;
}

// Everything after `launch` is launch's own options and then another program's command line, which
// CLI11 must not see.
int launch(const std::vector<std::string>& args) {
  try {
    return distributed::run_launch(
        distributed::parse_launch_args(std::vector<std::string>(args.begin() + 1, args.end())));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  util::configure_allocator();  // before any large tensor: see util/allocator.h
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--version" || (i == 0 && args[i] == "version")) {
      std::cout << version_text();
      return 0;
    }
  }
  if (!args.empty() && args[0] == "launch") return launch(args);
  if (const std::string cmd = cli::command_of(args);
      !cmd.empty() &&
      std::find(std::begin(kCommands), std::end(kCommands), cmd) == std::end(kCommands)) {
    std::string list;
    for (const char* c : kCommands) list += std::string(list.empty() ? "" : ", ") + c;
    std::fprintf(stderr, "error: unknown command '%s' (commands: %s; wristssl --help for more)\n",
                 cmd.c_str(), list.c_str());
    return 1;
  }
  CLI::App app{
      "wristssl: wrist fracture detection with self-supervised learning (SimCLR) on LibTorch"};
  app.require_subcommand(1);
  // Global options are accepted before or after the command name. Set before the commands are
  // added: each takes the setting from the app then.
  app.fallthrough();
  cli::Globals g;
  app.add_option("--threads", g.threads, "threads for LibTorch and decoding (0 = all cores)")
      ->capture_default_str();
  app.add_flag("--version", "print the version, the LibTorch version and the build's features");
  std::vector<cli::Command> commands;  // in the order --help lists them
  try {
    commands = {cli::add_inspect_command(app, g),        cli::add_scan_command(app, g),
                cli::add_pretrain_command(app, g, args), cli::add_train_command(app, g, args),
                cli::add_evaluate_command(app, g),       cli::add_predict_command(app, g),
                cli::add_bundle_command(app, g),         cli::add_listen_command(app, g),
                cli::add_serve_command(app, g),          cli::add_export_command(app, g),
                cli::add_metrics_command(app, g),        cli::add_run_command(app, g),
                cli::add_study_command(app, g),          cli::add_tune_command(app, g)};
  } catch (const std::exception& e) {  // pretrain's or train's --config file
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  CLI11_PARSE(app, argc, argv);
  try {
    util::set_threads(g.threads);
    for (const cli::Command& c : commands) {
      if (*c.app) return c.run();
    }
  } catch (const io::ImageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
