// `wristssl bundle`: the model bundle of a finished classifier run, an ensemble of bundles, or a
// bundle stored again (e.g. at half precision).
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/train/run_bundle.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, BundleArgs& a) {
  auto* cmd = app.add_subcommand(
      "bundle",
      "write a model bundle: of a finished classifier run, an ensemble of bundles, or a bundle "
      "stored again (--storage float16)");
  auto* run = cmd->add_option("--run", a.run, "classifier run folder");
  auto* members = cmd->add_option(
      "--members", a.members,
      "bundles to combine into one ensemble (the mean of their calibrated probabilities)");
  auto* model = cmd->add_option("--model", a.model, "a bundle to store again");
  run->excludes(members)->excludes(model);
  members->excludes(model);
  cmd->add_option("--out", a.out, "bundle file (default RUN/model.wristssl)");
  cmd->add_option("--name", a.name,
                  "model name recorded in the bundle (default: the run folder's name, or the "
                  "first member's + \"-ensemble\")");
  cmd->add_option("--storage", a.storage,
                  "float32 | float16 (half the size; weights rounded to half precision)")
      ->check(CLI::IsMember({"float32", "float16"}))
      ->capture_default_str();
  return cmd;
}

int run(const BundleArgs& a) {
  const models::Bundle b = train::write_requested_bundle(a);
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
