// What the command files share: the dataset options, the stand-alone parse, the --config pre-read.
#include "commands.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "wristssl/util/fs.h"

namespace wristssl::cli {

void add_dataset_options(CLI::App& cmd, data::DatasetOptions& o, std::string& layout,
                         bool required) {
  auto* data = cmd.add_option(
      "--data", o.data, "folder or csv: GRAZPEDWRI-DX, class folders, manifest, unlabelled tree");
  if (required) data->required();
  cmd.add_option("--layout", layout, "auto|grazpedwri|folders|manifest|unlabelled")
      ->capture_default_str();
  cmd.add_option("--image-dir", o.image_dirs,
                 "GRAZPEDWRI-DX image folder(s) holding <filestem>.png");
  cmd.add_flag("--exclude-cast", o.exclude_cast, "GRAZPEDWRI-DX: drop images with a cast");
  cmd.add_flag("--exclude-metal", o.exclude_metal, "GRAZPEDWRI-DX: drop images with metal");
  cmd.add_flag("--exclude-uncertain", o.exclude_uncertain,
               "GRAZPEDWRI-DX: drop uncertain diagnoses");
  cmd.add_option("--negative-class", o.negative_class, "class folder / label of label 0");
  cmd.add_option("--positive-class", o.positive_class,
                 "class folder / label of label 1 (fracture)");
  cmd.add_option("--path-column", o.path_column, "manifest: path column")->capture_default_str();
  cmd.add_option("--label-column", o.label_column, "manifest: label column")->capture_default_str();
  cmd.add_option("--group-column", o.group_column, "manifest: group column (patient)")
      ->capture_default_str();
  cmd.add_option("--where", o.where, "manifest: keep rows where column=value (repeatable)");
  cmd.add_option("--boxes", o.boxes,
                 "folder of YOLO box files, <image stem>.txt (FracAtlas: annotations/yolo)");
  cmd.add_option("--box-class", o.box_class,
                 "class index of the fracture boxes (-1: every box; GRAZPEDWRI-DX: 3)")
      ->capture_default_str();
}

void parse_command(const std::vector<std::string>& args,
                   const std::function<CLI::App*(CLI::App&)>& add) {
  CLI::App app;
  // main's app falls through, and a subcommand takes that setting from its parent when it is added.
  app.fallthrough();
  CLI::App* cmd = add(app);
  std::vector<std::string> words(args.rbegin(), args.rend());  // CLI11 takes them last first
  words.push_back(cmd->get_name());
  app.parse(words);
}

std::string find_arg(const std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  for (const std::string& a : args) {
    if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
  }
  return "";
}

void read_config(const std::string& path, const std::function<void(const nlohmann::json&)>& apply) {
  if (path.empty()) return;
  try {
    apply(nlohmann::json::parse(util::read_text(path)));
  } catch (const std::exception& e) {
    throw std::runtime_error("config " + path + ": " + e.what());
  }
}

std::string command_of(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--threads") {
      ++i;
      continue;
    }
    if (!args[i].empty() && args[i][0] == '-') continue;
    return args[i];
  }
  return "";
}

}  // namespace wristssl::cli
