// `wristssl study`: does pretraining pay off? Cross-validation over seeds, label fractions and
// arms.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "commands.h"
#include "wristssl/report/study_page.h"
#include "wristssl/study/study.h"

namespace wristssl::cli {
namespace {

struct Args {
  std::string config, out;
  bool quick = false;
};

CLI::App* add_options(CLI::App& app, Args& a) {
  auto* cmd = app.add_subcommand("study",
                                 "does pretraining pay off? grouped k-fold x seeds x label "
                                 "fractions x arms, paired tests, plot (resumable)");
  cmd->add_option("--config", a.config, "study config (JSON; see configs/study_fracatlas.json)");
  cmd->add_flag("--quick", a.quick,
                "the same code on the bundled sample, in about a minute (no --config needed)");
  cmd->add_option("--out", a.out, "output folder (overrides the config's 'out')");
  return cmd;
}

// A --config file wins over --quick.
study::StudyConfig resolve(const Args& a) {
  if (a.config.empty() && !a.quick)
    throw std::runtime_error("study needs --config FILE or --quick");
  study::StudyConfig config =
      a.config.empty() ? study::quick_study_config() : study::read_study_config(a.config);
  if (!a.out.empty()) config.out = a.out;
  return config;
}

int run(const study::StudyConfig& config, int threads) {
  const nlohmann::json s = study::run_study(config, threads);
  std::cout << report::render_study_markdown(s) << "report: " << config.out << "/study.html\n";
  return 0;
}

}  // namespace

study::StudyConfig parse_study(const std::vector<std::string>& args) {
  Args a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_study_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<Args>();
  return {add_options(app, *a), [a, &g] { return run(resolve(*a), g.threads); }};
}

}  // namespace wristssl::cli
