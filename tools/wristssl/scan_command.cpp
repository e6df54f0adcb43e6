// `wristssl scan --data ...`: read every image of a dataset and summarise what was found.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wristssl/data/scan.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/json_text.h"
#include "wristssl/util/progress.h"

namespace wristssl::cli {
namespace {

struct Args {
  ScanArgs scan;
  std::string layout = "auto";
};

CLI::App* add_options(CLI::App& app, Args& a) {
  auto* cmd = app.add_subcommand(
      "scan", "read every image of a dataset; count classes, groups, unreadable files");
  add_dataset_options(*cmd, a.scan.data, a.layout);
  cmd->add_option("--json", a.scan.json, "write the summary as JSON");
  return cmd;
}

ScanArgs resolve(Args a) {
  a.scan.data.layout = data::parse_layout(a.layout);
  return a.scan;
}

int run(const ScanArgs& a, int threads) {
  const data::Dataset ds = data::load_dataset(a.data);
  util::Progress bar("scan", ds.records.size());
  const data::ScanResult result =
      data::scan_dataset(ds, threads, [&](size_t done, size_t total) { bar.update(done); });
  bar.finish();
  std::cout << data::format_scan_report(result);
  if (!a.json.empty()) {
    util::atomic_write(a.json, util::json_text(data::scan_to_json(result), 2));
    std::cout << "summary: " << a.json << "\n";
  }
  return 0;
}

}  // namespace

ScanArgs parse_scan(const std::vector<std::string>& args) {
  Args a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_scan_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<Args>();
  return {add_options(app, *a), [a, &g] { return run(resolve(*a), g.threads); }};
}

}  // namespace wristssl::cli
