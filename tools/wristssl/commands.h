#pragma once
// The wristssl program's commands, one file each (<command>_command.cpp). main.cpp registers them
// on its CLI::App with add_<command>_command and runs the one named. Each command also has
// parse_<command>: the same options parsed from an argument list on their own, into what the
// command would call the library with, so that tests check what the flags set without running
// anything.
//
// The library's options structs are only declared here: tune's pulls in all of LibTorch, and every
// command file and test includes this header.

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"

namespace wristssl {
namespace infer {
struct PredictOptions;
}
namespace metrics {
struct MetricsCommandOptions;
}
namespace train {
struct BundleRequest;
}
namespace serve {
struct ListenOptions;
struct ServeOptions;
}  // namespace serve
namespace study {
struct EvaluateOptions;
struct StudyConfig;
}  // namespace study
namespace train {
struct ClassifierOptions;
struct PretrainOptions;
struct TuneOptions;
}  // namespace train
}  // namespace wristssl

namespace wristssl::cli {

/// The program's global options: the parse fills them, a command reads them when it runs.
/// The command named on a command line (the first argument that is not an option or the value of
/// --threads), or "" when there is none.
std::string command_of(const std::vector<std::string>& args);

struct Globals {
  int threads = 0;
};

/// A command on the program's app. After parsing, `*app` is true when the command line named it;
/// `run` then does the work and returns the exit status (it may throw: main turns an unreadable
/// image into 2, any other error into 1).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

/// The options every data-reading command shares; --layout goes to `layout`, resolved when the
/// command runs (data::parse_layout).
void add_dataset_options(CLI::App& cmd, data::DatasetOptions& o, std::string& layout,
                         bool required = true);

/// Parses `args` (the words after the command's name) on an app set up as main's, with the one
/// command `add` puts on it. Throws CLI::ParseError when they are refused (CLI::CallForHelp for
/// --help).
void parse_command(const std::vector<std::string>& args,
                   const std::function<CLI::App*(CLI::App&)>& add);

/// The value after `flag` in `args` ("--flag value", else "--flag=value"), or "".
std::string find_arg(const std::vector<std::string>& args, const std::string& flag);

/// Parses the JSON file `path` and hands it to `apply`; nothing when `path` is empty. Throws
/// std::runtime_error "config PATH: reason".
void read_config(const std::string& path, const std::function<void(const nlohmann::json&)>& apply);

// Each command: parse_<command>(args) with `args` the words after its name, then
// add_<command>_command(app, globals). pretrain and train also take `argv`, the whole command line
// after the program's name: a --config file in it is read before parsing, so that it sets the
// defaults the other flags then override.

struct InspectArgs {
  std::string file, out;
};
InspectArgs parse_inspect(const std::vector<std::string>& args);
Command add_inspect_command(CLI::App& app, const Globals& g);

struct ScanArgs {
  data::DatasetOptions data;  // layout resolved
  std::string json;
};
ScanArgs parse_scan(const std::vector<std::string>& args);
Command add_scan_command(CLI::App& app, const Globals& g);

train::PretrainOptions parse_pretrain(const std::vector<std::string>& args);
Command add_pretrain_command(CLI::App& app, const Globals& g, const std::vector<std::string>& argv);

train::ClassifierOptions parse_train(const std::vector<std::string>& args);
Command add_train_command(CLI::App& app, const Globals& g, const std::vector<std::string>& argv);

study::EvaluateOptions parse_evaluate(const std::vector<std::string>& args);
Command add_evaluate_command(CLI::App& app, const Globals& g);

infer::PredictOptions parse_predict(const std::vector<std::string>& args);
Command add_predict_command(CLI::App& app, const Globals& g);

using BundleArgs = train::BundleRequest;
BundleArgs parse_bundle(const std::vector<std::string>& args);
Command add_bundle_command(CLI::App& app, const Globals& g);

serve::ListenOptions parse_listen(const std::vector<std::string>& args);
Command add_listen_command(CLI::App& app, const Globals& g);

serve::ServeOptions parse_serve(const std::vector<std::string>& args);
Command add_serve_command(CLI::App& app, const Globals& g);

struct ExportArgs {
  std::string model, format, out;
};
ExportArgs parse_export(const std::vector<std::string>& args);
Command add_export_command(CLI::App& app, const Globals& g);

metrics::MetricsCommandOptions parse_metrics(const std::vector<std::string>& args);
Command add_metrics_command(CLI::App& app, const Globals& g);

struct RunArgs {
  std::string config;
};
RunArgs parse_run(const std::vector<std::string>& args);
Command add_run_command(CLI::App& app, const Globals& g);

/// The study's config: --config's file, else the --quick preset, with --out over its "out". Reads
/// the file; throws when there is neither option.
study::StudyConfig parse_study(const std::vector<std::string>& args);
Command add_study_command(CLI::App& app, const Globals& g);

/// `show` (when given) is set by --show: print the stored choice instead of measuring.
train::TuneOptions parse_tune(const std::vector<std::string>& args, bool* show = nullptr);
Command add_tune_command(CLI::App& app, const Globals& g);

}  // namespace wristssl::cli
