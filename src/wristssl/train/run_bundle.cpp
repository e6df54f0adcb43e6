#include "wristssl/train/run_bundle.h"
#include "wristssl/util/audit.h"  // utc_timestamp

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>

#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/models/classifier.h"
#include "wristssl/models/ensemble.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/util/fs.h"
#include "wristssl/version.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {
namespace {

double ece_of(const std::vector<int>& labels, const std::vector<double>& probs) {
  return metrics::compute_calibration(labels, probs, 10).ece;
}

// The figures a reader of the bundle wants, each with its interval, from a metrics_<part>.json.
json metrics_summary(const json& m) {
  json s = {{"n", m.value("n", 0)},
            {"n_positive", m.value("n_positive", 0)},
            {"threshold", m.value("threshold", 0.0)}};
  for (const auto& [k, v] : m.at("metrics").items())
    s[k] = {{"value", v.value("value", json())},
            {"lo", v.value("lo", json())},
            {"hi", v.value("hi", json())}};
  if (m.contains("calibration") && m["calibration"].is_object())
    s["ece"] = m["calibration"].value("ece", json());
  return s;
}

}  // namespace

json fit_decision(const std::vector<int>& labels, const std::vector<double>& margins,
                  double threshold_raw, const std::string& rule, double refer_fraction) {
  // A threshold at a score of exactly 0 or 1 (the rule picked a score that saturated in float, as it can
  // when a short fine-tuning blows the logits up) has no finite log-odds: it is taken just inside, where
  // float scores stop being 0 or 1, so the band, the calibrated threshold and the bundle stay finite.
  constexpr double kSaturated = 1e-7;
  const double threshold_margin = metrics::logit(std::clamp(threshold_raw, kSaturated, 1.0 - kSaturated));
  double t = 1.0;
  std::string note;
  try {
    t = metrics::fit_temperature(margins, labels);
  } catch (const std::exception& e) {
    note = std::string("not fitted (") + e.what() + "); temperature 1";
  }
  std::vector<double> raw, cal;
  for (double m : margins) {
    raw.push_back(metrics::sigmoid(m));
    cal.push_back(metrics::sigmoid(m / t));
  }
  const metrics::ReferBand band =
      metrics::choose_refer_band(margins, threshold_margin, t, refer_fraction);
  const double threshold = metrics::sigmoid(threshold_margin / t);
  // How the band does on the images it was chosen on: accuracy inside and outside it.
  int64_t out_n = 0, out_ok = 0, in_n = 0, in_ok = 0;
  for (size_t i = 0; i < cal.size(); ++i) {
    const bool inside = cal[i] >= band.lo && cal[i] < band.hi;
    const bool ok = (cal[i] >= threshold) == (labels[i] == 1);
    (inside ? in_n : out_n) += 1;
    (inside ? in_ok : out_ok) += ok;
  }
  json calibration = {
      {"method", "temperature"},
      {"temperature", t},
      {"fitted_on", "validation"},
      {"images", margins.size()},
      {"nll_before", labels.empty() ? json() : json(metrics::binary_nll(margins, labels, 1.0))},
      {"nll_after", labels.empty() ? json() : json(metrics::binary_nll(margins, labels, t))},
      {"ece_before", labels.empty() ? json() : json(ece_of(labels, raw))},
      {"ece_after", labels.empty() ? json() : json(ece_of(labels, cal))}};
  if (!note.empty()) calibration["note"] = note;
  return {
      {"threshold", threshold},
      {"threshold_raw", threshold_raw},
      {"threshold_margin", threshold_margin},
      {"rule", rule},
      {"chosen_on", "validation"},
      {"calibration", calibration},
      {"refer_band",
       {{"lo", band.lo},
        {"hi", band.hi},
        {"fraction", band.fraction},
        {"rule",
         "the given fraction of validation images nearest the threshold in calibrated log-odds"},
        {"val_images", band.images},
        {"val_inside", band.inside},
        {"val_accuracy_inside", in_n ? json(static_cast<double>(in_ok) / in_n) : json()},
        {"val_accuracy_outside", out_n ? json(static_cast<double>(out_ok) / out_n) : json()}}}};
}

models::Bundle bundle_from_run(const std::string& run, const std::string& name_in) {
  for (const char* f : {"config.json", "model.pt", "threshold.json"}) {
    if (!fs::exists(fs::path(run) / f))
      throw std::runtime_error(run + " is not a finished classifier run: no " + f);
  }
  const json cfg = json::parse(util::read_text(run + "/config.json"));
  const json thr = json::parse(util::read_text(run + "/threshold.json"));
  if (!thr.contains("decision")) {
    throw std::runtime_error(
        run +
        "/threshold.json has no decision block (calibration, refer band): the run was made by "
        "wristssl 0.1; rerun the same `wristssl train` command on it to fit them (no epoch is "
        "retrained)");
  }
  const json& resolved = cfg.at("resolved");
  const auto class_names = resolved.at("class_names").get<std::vector<std::string>>();
  models::Classifier model(
      static_cast<int64_t>(class_names.size()),
      models::Pooling{cfg.value("pooling", std::string("mean")),
                      cfg.value("pool_sharpness", models::Pooling().sharpness)});
  load_weights(run + "/model.pt", *model, "classifier");

  BundleInfo info;
  info.name = name_in.empty() ? fs::path(run).lexically_normal().filename().string() : name_in;
  if (info.name.empty() || info.name == ".")
    info.name = fs::weakly_canonical(run).filename().string();
  info.class_names = class_names;
  info.image_size = cfg.at("image_size").get<int>();
  // Native-scale crops train a fully convolutional model that scores the whole cached image.
  const bool whole = cfg.value("crops", std::string("resized")) == "native";
  info.input_size =
      !whole && cfg.value("crop_size", 0) > 0 ? cfg["crop_size"].get<int>() : info.image_size;
  info.mean = resolved.at("normalization").at("mean").get<float>();
  info.stdev = resolved.at("normalization").at("std").get<float>();
  info.decision = thr.at("decision");
  info.training = {{"data", cfg.at("data")},
                   {"init", cfg.value("init", std::string())},
                   {"backbone", cfg.value("backbone", std::string())},
                   {"crops", cfg.value("crops", std::string("resized"))},
                   {"crop_size", cfg.value("crop_size", 0)},
                   {"box_loss", cfg.value("box_loss", 0.0)},
                   {"probe_epochs", cfg.value("probe_epochs", 0)},
                   {"finetune_epochs", cfg.value("finetune_epochs", 0)},
                   {"best_epoch", thr.value("best_epoch", 0)},
                   {"val_auroc", thr.value("val_auroc", json())},
                   {"label_fraction", cfg.value("label_fraction", 1.0)},
                   {"imbalance", cfg.value("imbalance", std::string())},
                   {"seed", cfg.value("seed", 0)},
                   {"train_images", resolved.value("train_images", 0)},
                   {"val_images", resolved.value("val_images", 0)},
                   {"test_images", resolved.value("test_images", 0)},
                   {"class_weights", resolved.value("class_weights", json())},
                   {"torch_version", resolved.value("torch_version", std::string())},
                   {"run", run}};
  if (fs::exists(run + "/metrics_test.json")) {
    info.test_metrics = metrics_summary(json::parse(util::read_text(run + "/metrics_test.json")));
  }
  return make_bundle(*model, info);
}

models::Bundle make_bundle(models::ClassifierImpl& model, const BundleInfo& info) {
  models::Bundle b;
  b.manifest = {
      {"name", info.name},
      {"created", util::utc_timestamp()},
      {"wristssl_version", kVersion},
      {"torch_version", TORCH_VERSION},
      {"intended_use", "Research use only. Not a medical device; not for clinical decisions."},
      {"architecture",
       {{"name", "resnet18"},
        {"in_channels", 1},
        {"num_classes", model.num_classes},
        {"pooling", model.pooling.to_json()},
        {"output", "logits"}}},
      {"class_names", info.class_names},
      {"positive_class", 1},
      {"preprocessing",
       {{"image_size", info.image_size},
        {"input_size", info.input_size},
        {"resize", "stretch"},
        {"interpolation",
         "area averaging when shrinking, bilinear (half-pixel centres) when enlarging; then "
         "16-bit"},
        {"normalization", {{"mean", info.mean}, {"std", info.stdev}}},
        {"value_range", "[0, 1] with bone bright (MONOCHROME1 inverted)"},
        {"dicom",
         "Modality LUT or rescale slope/intercept, then the file's first VOI window (or VOI LUT), "
         "else the "
         "min-max of the stored range; frame 0 of multi-frame files"},
        {"channels", 1}}},
      {"decision", info.decision},
      {"training", info.training},
      {"test_metrics", info.test_metrics}};
  b.tensors = models::bundle_tensors(model);
  return b;
}

models::Bundle write_run_bundle(const std::string& run, const std::string& out,
                                const std::string& name) {
  BundleRequest r;
  r.run = run;
  r.out = out;
  r.name = name;
  return write_requested_bundle(r);
}

models::Bundle write_requested_bundle(const BundleRequest& r) {
  const int sources = !r.run.empty() + !r.members.empty() + !r.model.empty();
  if (sources != 1) {
    throw std::runtime_error(
        "bundle: give exactly one of --run RUN, --members B1 B2 ... or --model BUNDLE");
  }
  if (r.run.empty() && r.out.empty()) throw std::runtime_error("bundle: --out FILE is needed");
  models::Bundle b;
  if (!r.run.empty()) {
    b = bundle_from_run(r.run, r.name);
  } else if (!r.members.empty()) {
    std::vector<models::Bundle> members;
    for (const std::string& path : r.members) members.push_back(models::read_bundle(path));
    const std::string first = members[0].manifest.value("name", std::string("model"));
    b = models::make_ensemble(members, r.name.empty() ? first + "-ensemble" : r.name);
    b.manifest["created"] = util::utc_timestamp();
  } else {
    b = models::read_bundle(r.model);
    if (!r.name.empty()) b.manifest["name"] = r.name;
  }
  models::set_storage(b, r.storage);
  models::write_bundle(b, r.out.empty() ? r.run + "/model.wristssl" : r.out);
  std::fprintf(stderr, "bundle: %s (%s)\n", b.path.c_str(), b.id().c_str());
  return b;
}

models::Bundle untrained_bundle(int image_size, int input_size, uint64_t seed,
                                const std::string& name, models::Pooling pooling) {
  torch::manual_seed(seed);
  models::Classifier model(2, std::move(pooling));
  {
    torch::NoGradGuard no_grad;
    for (auto& b : model->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    }
    for (auto& p : model->named_parameters()) {
      if (p.key().find("bn") != std::string::npos ||
          p.key().find("downsample.1") != std::string::npos) {
        p.value().uniform_(p.key().find("weight") != std::string::npos ? 0.5 : -0.1,
                           p.key().find("weight") != std::string::npos ? 1.5 : 0.1);
      }
    }
  }
  BundleInfo info;
  info.name = name;
  info.image_size = image_size;
  info.input_size = input_size;
  info.mean = 0.45f;
  info.stdev = 0.22f;
  const double t = 1.5, centre = 0.2 / t;
  info.decision = {{"threshold", metrics::sigmoid(centre)},
                   {"threshold_raw", metrics::sigmoid(0.2)},
                   {"threshold_margin", 0.2},
                   {"rule", "youden"},
                   {"chosen_on", "validation"},
                   {"calibration", {{"method", "temperature"}, {"temperature", t}, {"images", 0}}},
                   {"refer_band",
                    {{"lo", metrics::sigmoid(centre - 0.3)},
                     {"hi", metrics::sigmoid(centre + 0.3)},
                     {"fraction", 0.1}}}};
  return make_bundle(*model, info);
}

}  // namespace wristssl::train
