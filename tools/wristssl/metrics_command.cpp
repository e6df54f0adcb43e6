// `wristssl metrics --scores CSV`: the paper's metrics from any model's scores.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/metrics/metrics_command.h"

namespace wristssl::cli {
namespace {

struct Args {
  metrics::MetricsCommandOptions options;
  double threshold = -1;  // none given: the option stays unset, which the library reads as 0.5
};

CLI::App* add_options(CLI::App& app, Args& a) {
  metrics::MetricsCommandOptions& o = a.options;
  auto* cmd = app.add_subcommand(
      "metrics", "the paper's metrics with 95% CIs from any model's scores (label,score[,group])");
  cmd->add_option("--scores", o.scores_csv, "CSV with columns label,score (higher = fracture)");
  cmd->add_option("--boxes", o.boxes_csv,
                  "boxes CSVs written by evaluate (boxes_<part>.csv; several: their union, e.g. "
                  "the folds of a cross-validation): hit rate, AP@0.5 and FROC with intervals");
  cmd->add_option("--threshold", a.threshold, "operating threshold (default 0.5)");
  cmd->add_option("--json", o.json_out, "write the metrics as JSON");
  cmd->add_option("--versus", o.versus_csv,
                  "another model's scores on the same images: paired DeLong test and bootstrap "
                  "of the AUROC difference (rows matched by path)");
  cmd->add_option("--bootstrap", o.bootstrap, "bootstrap resamples")->capture_default_str();
  cmd->add_option("--seed", o.seed, "bootstrap seed")->capture_default_str();
  cmd->add_option("--threshold-rule", o.threshold_rule,
                  "rule whose choice on this data is shown (information only)")
      ->capture_default_str();
  return cmd;
}

metrics::MetricsCommandOptions resolve(const Args& a) {
  metrics::MetricsCommandOptions o = a.options;
  if (a.threshold >= 0) o.threshold = a.threshold;
  return o;
}

}  // namespace

metrics::MetricsCommandOptions parse_metrics(const std::vector<std::string>& args) {
  Args a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_metrics_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<Args>();
  return {add_options(app, *a),
          [a] { return metrics::run_metrics_command(resolve(*a), std::cout); }};
}

}  // namespace wristssl::cli
