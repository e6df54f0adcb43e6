// `wristssl tune`: measure the training step here; the fastest configuration becomes this
// machine's.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/tuned.h"

namespace wristssl::cli {
namespace {

struct Args {
  train::TuneOptions options;
  bool show = false;
};

CLI::App* add_options(CLI::App& app, Args& a) {
  train::TuneOptions& o = a.options;
  auto* cmd = app.add_subcommand("tune",
                                 "measure the training step for each thread count and precision "
                                 "here; the fastest becomes this machine's default");
  cmd->add_option("--size", o.size, "view side of the measured step")->capture_default_str();
  cmd->add_option("--batch", o.batch, "images per step (2 views each)")->capture_default_str();
  cmd->add_option("--steps", o.steps, "timed steps per configuration")->capture_default_str();
  cmd->add_flag("--show", a.show, "print this machine's stored choice and exit");
  return cmd;
}

int show() {
  const auto c = util::cached_choice();
  std::cout << "machine: " << util::machine_key() << "\ncache: " << util::tune_cache_path() << "\n"
            << (c ? "choice: " + std::string(c->bf16 ? "bf16" : "fp32") + ", " +
                        std::to_string(c->threads) + " thread(s), tuned " + c->date + " (" +
                        c->why + ")\n"
                  : std::string("choice: none (not tuned: all cores, bf16 where native)\n"));
  return 0;
}

int run(const Args& a) {
  if (a.show) return show();
  const nlohmann::json entry = train::run_tune(a.options);
  std::cout << entry.dump(2) << "\n";
  return 0;
}

}  // namespace

train::TuneOptions parse_tune(const std::vector<std::string>& args, bool* show) {
  Args a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  if (show) *show = a.show;
  return a.options;
}

Command add_tune_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<Args>();
  return {add_options(app, *a), [a] { return run(*a); }};
}

}  // namespace wristssl::cli
