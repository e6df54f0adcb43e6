#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "wristssl/data/loader.h"
#include "wristssl/data/source.h"
#include "wristssl/data/split.h"
#include "wristssl/io/resize.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/models/classifier.h"
#include "wristssl/report/html_report.h"
#include "wristssl/report/png_thumb.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/common.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {
namespace {

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  if (!fs::exists(path)) return rows;
  std::istringstream in(util::read_text(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

double number_or_nan(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

std::string thumbnail(const data::PixelSource& px, int i) {
  const int s = px.image_size();
  std::vector<float> v(static_cast<size_t>(s) * s);
  const uint16_t* p = px.pixels(i);
  for (size_t k = 0; k < v.size(); ++k) v[k] = p[k] / 65535.0f;
  const int t = std::min(s, 160);
  return report::png8_base64(io::resize_image(v, s, s, t, t), t, t);
}

}  // namespace

json run_evaluate(const EvaluateOptions& eo) {
  const std::string cfg_path = eo.run + "/config.json";
  if (!fs::exists(cfg_path) || !fs::exists(eo.run + "/model.pt") || !fs::exists(eo.run + "/threshold.json")) {
    throw std::runtime_error(eo.run + " is not a finished classifier run (needs config.json, model.pt, threshold.json)");
  }
  const json cfg = json::parse(util::read_text(cfg_path));
  ClassifierOptions o;
  json plain = cfg;
  plain.erase("resolved");
  from_json(plain, o);
  if (o.crop_size <= 0) o.crop_size = o.image_size;
  if (o.split.empty()) o.split = o.out + "/split.json";
  const json thr = json::parse(util::read_text(eo.run + "/threshold.json"));
  const double threshold = thr.at("threshold").get<double>();
  const util::Compute compute = util::setup_compute("evaluate", eo.threads, o.precision);
  const c10::Device device = compute.device;
  const bool bf16 = compute.bf16;

  data::CacheOptions cache;
  cache.dir = o.cache_dir;
  cache.image_size = o.image_size;
  data::LoadedData loaded = data::load_pixels(o.data, cache, o.limit);
  const data::Dataset& ds = loaded.dataset;
  const data::Split split = data::load_split(o.split, ds);
  const data::Part part = eo.part == "test" ? data::Part::kTest : eo.part == "val" ? data::Part::kVal : data::Part::kTrain;
  if (eo.part != "test" && eo.part != "val" && eo.part != "train") throw std::runtime_error("--part must be test, val or train");
  std::vector<int> items;
  size_t unreadable = 0;
  for (int i : split.indices(part)) {
    if (loaded.pixels->ok(i)) {
      items.push_back(i);
    } else {
      ++unreadable;
    }
  }
  if (items.empty()) throw std::runtime_error("no readable images in the " + eo.part + " part");
  const float mean = cfg["resolved"]["normalization"]["mean"].get<float>();
  const float stdev = cfg["resolved"]["normalization"]["std"].get<float>();
  const int64_t num_classes = static_cast<int64_t>(ds.class_names.size());
  models::Classifier model(num_classes);
  load_weights(eo.run + "/model.pt", *model, "classifier");
  model->to(device);
  if (o.channels_last) to_channels_last(*model);
  model->eval();

  // Scores in dataset order of the part.
  const InferenceInput input{o.crop_size, mean, stdev, device, bf16, o.channels_last};
  const torch::Tensor prob =
      infer(*loaded.pixels, items, input, [&](const torch::Tensor& x) { return model->forward(x); }).softmax(1);
  std::vector<double> scores;
  std::vector<int> predicted;
  for (int64_t k = 0; k < prob.size(0); ++k) {
    scores.push_back(num_classes == 2 ? prob[k][1].item<double>() : prob[k].max().item<double>());
    predicted.push_back(static_cast<int>(prob[k].argmax().item<int64_t>()));
  }
  std::vector<int> labels;
  std::vector<std::string> groups;
  std::string csv = "path,group,label,score,predicted\n";
  for (size_t k = 0; k < items.size(); ++k) {
    const data::Record& r = ds.records[items[k]];
    labels.push_back(r.label);
    groups.push_back(r.group);
    const int pred = num_classes == 2 ? (scores[k] >= threshold ? 1 : 0) : predicted[k];
    csv += util::csv_field(r.path) + "," + util::csv_field(r.group) + "," + std::to_string(r.label) + "," +
           format_number(scores[k]) + "," + std::to_string(pred) + "\n";
  }
  util::atomic_write(eo.run + "/scores_" + eo.part + ".csv", csv);

  json out;
  if (num_classes != 2) {
    int64_t ok = 0;
    for (size_t k = 0; k < labels.size(); ++k) ok += predicted[k] == labels[k];
    const metrics::Estimate acc = metrics::wilson_interval(ok, static_cast<int64_t>(labels.size()));
    out = {{"part", eo.part}, {"n", labels.size()}, {"accuracy", {{"value", acc.value}, {"lo", acc.lo}, {"hi", acc.hi}}}};
    util::atomic_write(eo.run + "/metrics_" + eo.part + ".json", out.dump(2));
    std::printf("%s: accuracy %.4f (95%% CI %.4f-%.4f), %zu images\n", eo.part.c_str(), acc.value, acc.lo, acc.hi,
                labels.size());
    return out;
  }
  metrics::ReportOptions ro;
  ro.threshold = threshold;
  ro.threshold_source = "frozen on validation (" + thr.value("rule", std::string("?")) + ")";
  ro.bootstrap = eo.bootstrap;
  ro.seed = o.seed;
  ro.rule = metrics::parse_threshold_rule(o.threshold_rule);
  const metrics::MetricsReport rep = metrics::compute_report(labels, scores, groups, ro);
  out = rep.to_json();
  out["part"] = eo.part;
  out["unreadable_skipped"] = unreadable;
  util::atomic_write(eo.run + "/metrics_" + eo.part + ".json", out.dump(2));
  std::printf("%s", metrics::format_report(rep).c_str());

  if (eo.report) {
    report::ReportInputs in;
    in.title = "wristssl fracture detection report";
    in.test_metrics = out;
    if (fs::exists(eo.run + "/metrics_val.json")) in.val_metrics = json::parse(util::read_text(eo.run + "/metrics_val.json"));
    in.threshold_rule = thr.value("rule", std::string());
    for (const json& r : read_jsonl(eo.run + "/metrics.jsonl")) {
      in.history.push_back({r.value("epoch", 0), r.value("phase", std::string()), number_or_nan(r, "train_loss"),
                            number_or_nan(r, "val_loss"), number_or_nan(r, "val_accuracy"), number_or_nan(r, "val_auroc")});
    }
    if (o.init == "simclr" && !o.backbone.empty()) {
      for (const json& r : read_jsonl((fs::path(o.backbone).parent_path() / "metrics.jsonl").string())) {
        in.pretrain.push_back({r.value("epoch", 0), number_or_nan(r, "loss"), number_or_nan(r, "knn_accuracy")});
      }
    }
    // Most confident errors: false negatives with the lowest scores, false positives with the highest.
    std::vector<size_t> fn, fp;
    for (size_t k = 0; k < items.size(); ++k) {
      if (labels[k] == 1 && scores[k] < threshold) fn.push_back(k);
      if (labels[k] == 0 && scores[k] >= threshold) fp.push_back(k);
    }
    std::sort(fn.begin(), fn.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    std::sort(fp.begin(), fp.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
    for (auto* list : {&fn, &fp}) {
      for (size_t j = 0; j < list->size() && static_cast<int>(j) < eo.gallery; ++j) {
        const size_t k = (*list)[j];
        report::GalleryItem g{ds.records[items[k]].path, labels[k], scores[k], thumbnail(*loaded.pixels, items[k])};
        (list == &fn ? in.false_negatives : in.false_positives).push_back(g);
      }
    }
    in.run_info = {{"data", o.data.data},
                   {"split", o.split},
                   {"evaluated part", eo.part},
                   {"images scored", items.size()},
                   {"unreadable skipped", unreadable},
                   {"train / val / test images", std::to_string(cfg["resolved"].value("train_images", 0)) + " / " +
                                                     std::to_string(cfg["resolved"].value("val_images", 0)) + " / " +
                                                     std::to_string(cfg["resolved"].value("test_images", 0))},
                   {"initialisation", o.init == "simclr" ? "SimCLR backbone " + o.backbone : "random (supervised baseline)"},
                   {"schedule", std::to_string(o.probe_epochs) + " probe + " + std::to_string(o.finetune_epochs) +
                                    " fine-tune epochs, best epoch " + std::to_string(thr.value("best_epoch", 0))},
                   {"image size", std::to_string(o.image_size) + " px (network input " + std::to_string(o.crop_size) + " px)"},
                   {"label fraction", o.label_fraction},
                   {"threshold", std::to_string(threshold) + " (" + thr.value("rule", std::string()) + ", chosen on validation)"},
                   {"seed", o.seed},
                   {"run folder", eo.run}};
    in.disclaimer =
        "Research software. Not a medical device; not for clinical decisions. Figures describe this test set only; "
        "intervals are 95% (Wilson for proportions, bootstrap over patients/groups for AUROC, AUPRC and F1).";
    report::write_report(eo.run + "/report.html", in);
    std::printf("report: %s\n", (eo.run + "/report.html").c_str());
  }
  return out;
}

}  // namespace wristssl::train
