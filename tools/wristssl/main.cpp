// wristssl: the command-line program. It parses options and calls the library; nothing else.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "wristssl/data/dataset.h"
#include "wristssl/data/scan.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/progress.h"
#include "wristssl/util/threads.h"

namespace {

using namespace wristssl;

// Options every data-reading command shares.
void add_dataset_options(CLI::App* cmd, data::DatasetOptions* o, std::string* layout) {
  cmd->add_option("--data", o->data, "folder or csv: GRAZPEDWRI-DX, class folders, manifest, unlabelled tree")
      ->required();
  cmd->add_option("--layout", *layout, "auto|grazpedwri|folders|manifest|unlabelled")->capture_default_str();
  cmd->add_option("--image-dir", o->image_dirs, "GRAZPEDWRI-DX image folder(s) holding <filestem>.png");
  cmd->add_flag("--exclude-cast", o->exclude_cast, "GRAZPEDWRI-DX: drop images with a cast");
  cmd->add_flag("--exclude-metal", o->exclude_metal, "GRAZPEDWRI-DX: drop images with metal");
  cmd->add_flag("--exclude-uncertain", o->exclude_uncertain, "GRAZPEDWRI-DX: drop uncertain diagnoses");
  cmd->add_option("--negative-class", o->negative_class, "class folder / label of label 0");
  cmd->add_option("--positive-class", o->positive_class, "class folder / label of label 1 (fracture)");
  cmd->add_option("--path-column", o->path_column, "manifest: path column")->capture_default_str();
  cmd->add_option("--label-column", o->label_column, "manifest: label column")->capture_default_str();
  cmd->add_option("--group-column", o->group_column, "manifest: group column (patient)")->capture_default_str();
  cmd->add_option("--where", o->where, "manifest: keep rows where column=value (repeatable)");
}

int run_inspect(const std::string& file, const std::string& out) {
  const io::Image image = io::read_image(file);
  nlohmann::json j = io::info_to_json(image.info);
  j["path"] = file;
  if (!out.empty()) {
    io::write_png16(image, out);
    j["written"] = out;
  }
  std::cout << j.dump(2) << "\n";
  return 0;
}

int run_scan(data::DatasetOptions o, const std::string& layout, const std::string& json_out, int threads) {
  o.layout = data::parse_layout(layout);
  const data::Dataset ds = data::load_dataset(o);
  util::Progress bar("scan", ds.records.size());
  const data::ScanResult result =
      data::scan_dataset(ds, threads, [&](size_t done, size_t total) { bar.update(done); });
  bar.finish();
  std::cout << data::format_scan_report(result);
  if (!json_out.empty()) {
    util::atomic_write(json_out, data::scan_to_json(result).dump(2));
    std::cout << "summary: " << json_out << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wristssl: wrist fracture detection with self-supervised learning (SimCLR) on LibTorch"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "threads for LibTorch and decoding (0 = all cores)")->capture_default_str();

  std::string inspect_file, inspect_out;
  auto* inspect = app.add_subcommand("inspect", "print an image's metadata as JSON; --out writes it as 16-bit PNG");
  inspect->add_option("file", inspect_file, "PNG, JPEG or DICOM file")->required();
  inspect->add_option("--out", inspect_out, "write the decoded image (after LUTs / inversion) as 16-bit grey PNG");

  data::DatasetOptions scan_data;
  std::string scan_layout = "auto", scan_json;
  auto* scan = app.add_subcommand("scan", "read every image of a dataset; count classes, groups, unreadable files");
  add_dataset_options(scan, &scan_data, &scan_layout);
  scan->add_option("--json", scan_json, "write the summary as JSON");

  CLI11_PARSE(app, argc, argv);
  try {
    util::set_threads(threads);
    if (*inspect) return run_inspect(inspect_file, inspect_out);
    if (*scan) return run_scan(scan_data, scan_layout, scan_json, threads);
  } catch (const io::ImageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
