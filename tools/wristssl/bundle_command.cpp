// `wristssl bundle --run RUN`: the model bundle of a finished classifier run.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/train/run_bundle.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, BundleArgs& a) {
  auto* cmd = app.add_subcommand("bundle", "write the model bundle of a finished classifier run");
  cmd->add_option("--run", a.run, "classifier run folder")->required();
  cmd->add_option("--out", a.out, "bundle file (default RUN/model.wristssl)");
  cmd->add_option("--name", a.name,
                  "model name recorded in the bundle (default: the run folder's name)");
  return cmd;
}

int run(const BundleArgs& a) {
  const models::Bundle b = train::write_run_bundle(a.run, a.out, a.name);
  std::cout << b.path << "\n" << b.id() << "\nsha256 " << b.sha256 << "\n";
  return 0;
}

}  // namespace

BundleArgs parse_bundle(const std::vector<std::string>& args) {
  BundleArgs a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return a;
}

Command add_bundle_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<BundleArgs>();
  return {add_options(app, *a), [a] { return run(*a); }};
}

}  // namespace wristssl::cli
