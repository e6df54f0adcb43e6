// `wristssl evaluate`: metrics with intervals, scores and report, on a run's own split or on other
// data.
#include <memory>

#include "commands.h"
#include "wristssl/study/evaluate.h"

namespace wristssl::cli {
namespace {

struct Args {
  study::EvaluateOptions options;
  std::string layout = "auto";
};

CLI::App* add_options(CLI::App& app, Args& a) {
  study::EvaluateOptions& o = a.options;
  auto* cmd = app.add_subcommand("evaluate",
                                 "metrics with 95% CIs, scores CSV and report: a run's own split "
                                 "(--run), or any labelled data (--model --data)");
  cmd->add_option("--run", o.run, "classifier run folder: score a part of its own split");
  cmd->add_option("--part", o.part, "with --run: test | val | train")->capture_default_str();
  cmd->add_option(
      "--model", o.model,
      "model bundle (model.wristssl): score the labelled --data at its frozen threshold");
  add_dataset_options(*cmd, o.data, a.layout, false);
  cmd->add_option("--out", o.out, "with --model: output folder (default evaluation-<model name>)");
  cmd->add_option("--cache-dir", o.cache_dir, "preprocessing cache folder")->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp32 | bf16 | auto")->capture_default_str();
  cmd->add_option("--bootstrap", o.bootstrap, "bootstrap resamples")->capture_default_str();
  cmd->add_option("--gallery", o.gallery, "most confident errors shown per kind, with Grad-CAM")
      ->capture_default_str();
  cmd->add_flag("!--no-report", o.report, "do not write report.html");
  cmd->add_option("--box-drop", o.box_drop,
                  "with boxes: decode each box over the cells within this many log-odds of its "
                  "peak (default: the bundle's, 0.25)")
      ->check(CLI::NonNegativeNumber);
  return cmd;
}

study::EvaluateOptions resolve(const Args& a) {
  study::EvaluateOptions o = a.options;
  if (a.layout != "auto") o.data.layout = data::parse_layout(a.layout);
  return o;
}

}  // namespace

study::EvaluateOptions parse_evaluate(const std::vector<std::string>& args) {
  Args a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_evaluate_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<Args>();
  return {add_options(app, *a), [a, &g] {
            study::EvaluateOptions o = resolve(*a);
            o.threads = g.threads;
            study::run_evaluate(o);
            return 0;
          }};
}

}  // namespace wristssl::cli
