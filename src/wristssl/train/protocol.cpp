#include "wristssl/train/protocol.h"

#include <cstdio>
#include <filesystem>

#include "wristssl/data/dataset.h"
#include "wristssl/data/split.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/common.h"
#include "wristssl/train/options_json.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {
namespace {

const char* const kTopKeys[] = {"out", "data", "pretrain_data", "seed", "cache_dir", "image_size", "split",
                                "pretrain", "classifier", "baseline", "bootstrap", "description"};

json summary_of(const json& m) {
  json s;
  for (const char* k : {"auroc", "accuracy", "recall", "specificity", "precision", "f1", "npv", "auprc"}) {
    if (m.contains("metrics") && m["metrics"].contains(k)) s[k] = m["metrics"][k];
  }
  if (m.contains("threshold")) s["threshold"] = m["threshold"];
  if (m.contains("n")) s["n"] = m["n"];
  return s;
}

}  // namespace

json run_protocol(const std::string& config_path, int threads) {
  const json cfg = json::parse(util::read_text(config_path));
  for (const auto& [k, v] : cfg.items()) {
    if (std::find(std::begin(kTopKeys), std::end(kTopKeys), k) == std::end(kTopKeys)) {
      throw std::runtime_error(config_path + ": unknown key '" + k + "'");
    }
  }
  const std::string out = cfg.at("out").get<std::string>();
  fs::create_directories(out);
  util::atomic_write(out + "/run_config.json", cfg.dump(2));
  const uint64_t seed = cfg.value("seed", uint64_t{0});
  const std::string cache_dir = cfg.value("cache_dir", std::string(".wristssl-cache"));
  const int image_size = cfg.value("image_size", 512);
  const int bootstrap = cfg.value("bootstrap", 2000);
  data::DatasetOptions data;
  data_options_from_json(cfg.at("data"), data);
  install_stop_handlers();

  // 1. The split, made once from the labelled data and reused by every stage.
  const std::string split_path = out + "/split.json";
  if (!fs::exists(split_path)) {
    const data::Dataset ds = data::load_dataset(data);
    const json sp = config_section(cfg, "split");
    const data::Split split = data::make_split(ds, {sp.value("val_fraction", 0.15), sp.value("test_fraction", 0.15), seed});
    data::save_split(split_path, ds, split);
    std::fprintf(stderr, "run: split of %zu images written to %s\n", ds.records.size(), split_path.c_str());
  }
  json summary = {{"config", config_path}, {"out", out}};

  // 2. SimCLR pretraining (val / test images kept out).
  std::string backbone;
  const bool pretrain = cfg.contains("pretrain") && !cfg["pretrain"].is_null();
  if (pretrain) {
    PretrainOptions po;
    from_json(cfg["pretrain"], po);
    po.data = data;
    if (cfg.contains("pretrain_data")) data_options_from_json(cfg["pretrain_data"], po.data);
    po.out = out + "/pretrain";
    po.split = split_path;
    po.cache_dir = cache_dir;
    po.image_size = image_size;
    po.seed = seed;
    po.threads = threads;
    std::fprintf(stderr, "run: stage pretrain -> %s\n", po.out.c_str());
    const PretrainResult r = run_pretrain(po);
    if (r.interrupted) throw std::runtime_error("interrupted during pretraining; rerun the same command to resume");
    backbone = r.backbone_path;
    summary["pretrain"] = {{"epochs", r.epochs_done}, {"last_epoch_loss", r.last_epoch_loss}, {"backbone", backbone}};
  }

  // 3-4. Classifier(s) and evaluation on val and test.
  auto classify = [&](const std::string& name, const std::string& init, const json& overrides) {
    ClassifierOptions co;
    from_json(config_section(cfg, "classifier"), co);
    from_json(overrides, co);
    co.data = data;
    co.out = out + "/" + name;
    co.split = split_path;
    co.cache_dir = cache_dir;
    co.image_size = image_size;
    co.seed = seed;
    co.threads = threads;
    co.bootstrap = bootstrap;
    co.init = init;
    co.backbone = init == "simclr" ? backbone : "";
    std::fprintf(stderr, "run: stage %s (%s init) -> %s\n", name.c_str(), init.c_str(), co.out.c_str());
    const ClassifierResult r = run_classifier(co);
    if (r.interrupted) throw std::runtime_error("interrupted during " + name + "; rerun the same command to resume");
    EvaluateOptions eo;
    eo.run = co.out;
    eo.bootstrap = bootstrap;
    eo.threads = threads;
    eo.part = "val";
    eo.report = false;
    run_evaluate(eo);
    eo.part = "test";
    eo.report = true;
    const json test = run_evaluate(eo);
    summary[name] = {{"init", init}, {"best_epoch", r.best_epoch}, {"val_auroc", r.best_val_auroc},
                     {"threshold", r.threshold}, {"test", summary_of(test)},
                     {"report", co.out + "/report.html"}};
  };
  classify("classifier", pretrain ? "simclr" : "random", json::object());
  // The supervised baseline: the same data, split and evaluation from random initialisation; "baseline"
  // is true, or an object of classifier options that differ for it (e.g. no frozen-backbone phase).
  const json baseline = cfg.value("baseline", json(false));
  if (pretrain && (baseline.is_object() || (baseline.is_boolean() && baseline.get<bool>()))) {
    classify("baseline", "random", baseline.is_object() ? baseline : json::object());
  }
  util::atomic_write(out + "/summary.json", summary.dump(2));
  return summary;
}

}  // namespace wristssl::train
