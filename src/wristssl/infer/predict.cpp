#include "wristssl/infer/predict.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "wristssl/data/dataset.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/json_text.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/progress.h"
#include "wristssl/util/threads.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::infer {
namespace {

struct Decoded {
  std::optional<io::Image> image;  // kept only when heatmaps are asked for
  std::vector<float> input;
  std::string error, warning;
  int width = 0, height = 0;
};

Decoded decode_one(const std::string& path, const Predictor& predictor, bool keep_image) {
  Decoded d;
  try {
    io::Image img = io::read_image(path);
    d.warning = modality_warning(img.info);
    d.input = predictor.input(img);
    d.width = img.info.width;
    d.height = img.info.height;
    if (keep_image) d.image = std::move(img);
  } catch (const io::ImageError& e) {
    d.error = std::string(io::error_kind_name(e.kind())) + ": " + e.reason();
  } catch (const std::exception& e) {
    d.error = std::string("error: ") + e.what();
  }
  return d;
}

std::string heatmap_name(const std::string& path, std::set<std::string>& used) {
  const std::string stem =
      fs::path(path).stem().string().empty() ? "image" : fs::path(path).stem().string();
  std::string name = stem + ".gradcam.png";
  for (int k = 2; used.count(name); ++k) name = stem + "-" + std::to_string(k) + ".gradcam.png";
  used.insert(name);
  return name;
}

}  // namespace

int auto_batch_size(int input_size) {
  const double side = std::max(1, input_size);
  return std::clamp(static_cast<int>(std::lround(512.0 * 512.0 / (side * side))), 1, 32);
}

std::vector<std::string> collect_inputs(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw std::runtime_error("predict: give at least one image file or folder");
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(in, ec);
    if (fs::is_directory(st)) {
      const std::vector<std::string> found = data::list_image_files(in);
      if (found.empty()) {
        throw std::runtime_error(
            in +
            ": no image files in this folder (looked for .png, .jpg, .jpeg, .dcm, .dicom "
            "and files without an extension, recursively)");
      }
      files.insert(files.end(), found.begin(), found.end());
    } else if (!fs::exists(fs::symlink_status(in, ec))) {
      throw std::runtime_error(in + ": no such file or folder");
    } else {
      files.push_back(in);  // a file, or something unreadable that gets its own error row
    }
  }
  return files;
}

dicom::ModelIdentity model_identity(const models::Bundle& bundle, const models::DecisionRule& rule) {
  dicom::ModelIdentity m;
  m.name = bundle.manifest.value("name", std::string("wristssl-model"));
  m.sha256 = bundle.sha256;
  m.id = bundle.id();
  char buf[160];
  std::snprintf(buf, sizeof(buf), "threshold %.4f; refer band [%.4f, %.4f); temperature %.4g", rule.threshold,
                rule.refer_lo, rule.refer_hi, rule.temperature);
  m.parameters = buf;
  m.research_only = !bundle.manifest.value("clinical_use", false);
  return m;
}

dicom::Finding finding(const Prediction& p, const models::DecisionRule& rule, int width,
                       int height) {
  dicom::Finding f{p.probability, p.decision, {}};
  for (size_t k : shown_boxes(p, rule)) {
    const data::ScoredBox& b = p.boxes[k];
    const auto px = models::box_pixels(b.box, width, height);
    f.regions.push_back({static_cast<double>(px[0]), static_cast<double>(px[1]),
                         static_cast<double>(px[2]), static_cast<double>(px[3]), b.score,
                         std::string(rule.decide(b.score)) == "fracture" ? "fracture" : "refer"});
  }
  return f;
}

namespace {

// The heatmap overlay and, for a DICOM input, the structured report and secondary capture of one
// scored image.
void write_extras(const PredictOptions& o, const io::Image& image, const torch::Tensor& map,
                  const Prediction& p, const models::DecisionRule& rule,
                  const dicom::ModelIdentity& identity, std::set<std::string>& heat_names,
                  PredictRow& r) {
  if (!o.heatmaps.empty()) {
    const std::string path = (fs::path(o.heatmaps) / heatmap_name(r.path, heat_names)).string();
    util::atomic_write(path, heatmap_png(image, map, 512, &p, &rule));
    r.heatmap = path;
  }
  if (!o.dicom_out.empty() && image.info.format == "dicom") {
    try {
      const dicom::SourceInstance source = dicom::SourceInstance::read(r.path);
      const dicom::ResultFiles f = dicom::write_results(
          source, finding(p, rule, image.info.width, image.info.height), identity,
          heatmap_overlay(image, map, kCaptureMaxSide, &p, &rule), o.dicom_out, o.uid_root);
      r.dicom_report = f.report;
      r.dicom_capture = f.secondary_capture;
    } catch (const std::exception& e) {
      const std::string w = std::string("no DICOM results: ") + e.what();
      r.warning = r.warning.empty() ? w : r.warning + "; " + w;
      std::fprintf(stderr, "\npredict: warning: %s\n", w.c_str());
    }
  }
}

// The rows as CSV (standard output unless --csv or --json) and JSON with the model's identity, and
// a summary.
void write_rows(const PredictOptions& o, const Predictor& predictor,
                const std::vector<PredictRow>& rows, std::ostream& out) {
  std::string csv = "path,probability,decision,error,boxes\n";
  json list = json::array();
  size_t n_ok = 0;
  std::map<std::string, int> decisions;
  for (const PredictRow& r : rows) {
    csv += util::csv_field(r.path) + "," +
           (r.ok ? metrics::format_probability(r.probability) : "") + "," + r.decision + "," +
           util::csv_field(r.error) + "," + (r.ok ? std::to_string(r.shown_boxes) : "") + "\n";
    json j = {{"path", r.path}};
    if (r.ok) {
      j["probability"] = r.probability;
      j["margin"] = r.margin;
      j["decision"] = r.decision;
      Prediction p;
      p.decision = r.decision;
      p.boxes = r.boxes;
      p.show_boxes = predictor.box_decoding().show;
      j["boxes"] = boxes_json(p, predictor.rule(), r.width, r.height);
      ++n_ok;
      ++decisions[r.decision];
    } else {
      j["error"] = r.error;
    }
    if (!r.warning.empty()) j["warning"] = r.warning;
    if (!r.heatmap.empty()) j["heatmap"] = r.heatmap;
    if (!r.dicom_report.empty())
      j["dicom"] = {{"report", r.dicom_report}, {"secondary_capture", r.dicom_capture}};
    list.push_back(j);
  }
  if (!o.csv.empty()) util::atomic_write(o.csv, csv);
  if (!o.json.empty()) {
    const auto& m = predictor.bundle().manifest;
    const json doc = {{"model",
                       {{"id", predictor.bundle().id()},
                        {"sha256", predictor.bundle().sha256},
                        {"path", predictor.bundle().path},
                        {"threshold", predictor.rule().threshold},
                        {"refer_band", {predictor.rule().refer_lo, predictor.rule().refer_hi}},
                        {"temperature", predictor.rule().temperature},
                        {"members", predictor.members()},
                        {"localisation", predictor.box_decoding().to_json()},
                        {"intended_use", m.value("intended_use", std::string())}}},
                      {"images", list}};
    util::atomic_write(o.json, util::json_text(doc, 2));
  }
  if (o.csv.empty() && o.json.empty()) out << csv << std::flush;
  std::fprintf(
      stderr,
      "predict: %zu images scored (%d fracture, %d no_fracture, %d refer), %zu unreadable\n", n_ok,
      decisions["fracture"], decisions["no_fracture"], decisions["refer"], rows.size() - n_ok);
}

}  // namespace

std::vector<PredictRow> run_predict(const PredictOptions& o, std::ostream& out) {
  if (o.batch_size < 0) throw std::runtime_error("--batch-size must be >= 1 (or 0: by input size)");
  const std::vector<std::string> files = collect_inputs(o.inputs);
  PredictorOptions po;
  po.precision = o.precision;
  po.threads = o.threads;
  po.boxes = o.boxes;
  Predictor predictor(models::read_bundle(models::model_or_shipped(o.model)), po);
  std::fprintf(stderr,
               "predict: %s, %zu files, input %d px, threshold %.4f, refer band [%.4f, %.4f)\n",
               predictor.bundle().id().c_str(), files.size(), predictor.preprocessing().input_size,
               predictor.rule().threshold, predictor.rule().refer_lo, predictor.rule().refer_hi);
  const int batch_size =
      o.batch_size > 0 ? o.batch_size : auto_batch_size(predictor.preprocessing().input_size);
  const bool heat = !o.heatmaps.empty() || !o.dicom_out.empty();
  if (!o.heatmaps.empty()) fs::create_directories(o.heatmaps);
  if (!o.dicom_out.empty()) fs::create_directories(o.dicom_out);
  const dicom::ModelIdentity identity = model_identity(predictor.bundle(), predictor.rule());
  std::vector<PredictRow> rows(files.size());
  std::set<std::string> heat_names;
  util::Progress bar("predict", files.size());
  // Files are decoded on LibTorch's own OpenMP team (at::parallel_for), never on extra threads: on
  // a machine whose cores the team already fills, one more runnable thread stalls the team at every
  // barrier (measured here, marginal cost per 512 px image: 152 ms with separate decoding threads,
  // 132 ms this way).
  const size_t step = static_cast<size_t>(batch_size);
  for (size_t begin = 0; begin < files.size(); begin += step) {
    const size_t end = std::min(files.size(), begin + step);
    std::vector<Decoded> dec(end - begin);
    at::parallel_for(0, static_cast<int64_t>(dec.size()), 1, [&](int64_t first, int64_t last) {
      for (int64_t k = first; k < last; ++k) dec[k] = decode_one(files[begin + k], predictor, heat);
    });

    std::vector<std::vector<float>> inputs;
    std::vector<size_t> ok;
    for (size_t k = 0; k < dec.size(); ++k) {
      PredictRow& r = rows[begin + k];
      r.path = files[begin + k];
      r.error = dec[k].error;
      r.warning = dec[k].warning;
      if (!r.warning.empty())
        std::fprintf(stderr, "\npredict: warning: %s: %s\n", r.path.c_str(), r.warning.c_str());
      if (r.error.empty()) {
        inputs.push_back(std::move(dec[k].input));
        ok.push_back(k);
      }
    }
    if (!inputs.empty()) {
      const torch::Tensor x = util::channels_last(predictor.batch(inputs));
      torch::Tensor maps;
      const std::vector<Prediction> preds =
          heat ? predictor.predict_with_heatmaps(x, &maps) : predictor.predict(x);
      for (size_t j = 0; j < ok.size(); ++j) {
        PredictRow& r = rows[begin + ok[j]];
        r.ok = true;
        r.margin = preds[j].margin;
        r.probability = preds[j].probability;
        r.decision = preds[j].decision;
        r.width = dec[ok[j]].width;
        r.height = dec[ok[j]].height;
        r.boxes = preds[j].boxes;
        r.shown_boxes = static_cast<int>(shown_boxes(preds[j], predictor.rule()).size());
        if (heat) {
          write_extras(o, *dec[ok[j]].image, maps[static_cast<int64_t>(j)], preds[j],
                       predictor.rule(), identity, heat_names, r);
        }
      }
    }
    bar.update(end);
  }
  bar.finish();

  write_rows(o, predictor, rows, out);
  return rows;
}

}  // namespace wristssl::infer
