// `wristssl inspect FILE [--out PNG]`: an image's metadata as JSON.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/json_text.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, InspectArgs& a) {
  auto* cmd = app.add_subcommand(
      "inspect", "print an image's metadata as JSON; --out writes it as 16-bit PNG");
  cmd->add_option("file", a.file, "PNG, JPEG or DICOM file")->required();
  cmd->add_option("--out", a.out,
                  "write the decoded image (after LUTs / inversion) as 16-bit grey PNG");
  return cmd;
}

int run(const InspectArgs& a) {
  const io::Image image = io::read_image(a.file);
  nlohmann::json j = io::info_to_json(image.info);
  j["path"] = a.file;
  if (!a.out.empty()) {
    io::write_png16(image, a.out);
    j["written"] = a.out;
  }
  std::cout << util::json_text(j, 2) << "\n";
  return 0;
}

}  // namespace

InspectArgs parse_inspect(const std::vector<std::string>& args) {
  InspectArgs a;
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return a;
}

Command add_inspect_command(CLI::App& app, const Globals& g) {
  auto a = std::make_shared<InspectArgs>();
  return {add_options(app, *a), [a] { return run(*a); }};
}

}  // namespace wristssl::cli
