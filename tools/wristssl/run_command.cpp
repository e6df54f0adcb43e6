// `wristssl run --config FILE`: the paper's whole protocol, stage after stage.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wristssl/study/protocol.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, RunArgs& a) {
  auto* cmd = app.add_subcommand(
      "run",
      "the whole protocol: split, pretrain, probe + fine-tune, evaluate, report (resumable)");
  cmd->add_option("--config", a.config, "run config (JSON; see configs/)")->required();
  return cmd;
}

int run(const RunArgs& a, int threads) {
  const nlohmann::json s = study::run_protocol(a.config, threads);
  std::cout << s.dump(2) << "\n";
  for (const char* stage : {"classifier", "baseline"}) {
    if (s.contains(stage))
      std::cout << stage << " report: " << s[stage]["report"].get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace

RunArgs parse_run(const std::vector<std::string>& args) {
  RunArgs a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return a;
}

Command add_run_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<RunArgs>();
  return {add_options(app, *a), [a, &g] { return run(*a, g.threads); }};
}

}  // namespace wristssl::cli
