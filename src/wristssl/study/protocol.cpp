#include "wristssl/study/protocol.h"

#include <cstdio>
#include <filesystem>

#include "wristssl/data/dataset.h"
#include "wristssl/data/split.h"
#include "wristssl/study/evaluate.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/stop_signal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::study {
namespace {

json summary_of(const json& m) {
  json s;
  for (const char* k :
       {"auroc", "accuracy", "recall", "specificity", "precision", "f1", "npv", "auprc"}) {
    if (m.contains("metrics") && m["metrics"].contains(k)) s[k] = m["metrics"][k];
  }
  if (m.contains("threshold")) s["threshold"] = m["threshold"];
  if (m.contains("n")) s["n"] = m["n"];
  return s;
}

// The split, made once from the labelled data and reused by every stage.
std::string make_split(const ProtocolConfig& c) {
  const std::string split_path = c.out + "/split.json";
  if (!fs::exists(split_path)) {
    const data::Dataset ds = data::load_dataset(c.data);
    const data::Split split = data::make_split(ds, {c.val_fraction, c.test_fraction, c.seed});
    data::save_split(split_path, ds, split);
    std::fprintf(stderr, "run: split of %zu images written to %s\n", ds.records.size(),
                 split_path.c_str());
  }
  return split_path;
}

// SimCLR pretraining (val / test images kept out); returns the backbone and records the stage in
// `summary`.
std::string pretrain(const ProtocolConfig& c, const std::string& split_path, int threads,
                     json& summary) {
  train::PretrainOptions po = *c.pretrain;
  po.data = c.pretrain_data ? *c.pretrain_data : c.data;
  po.out = c.out + "/pretrain";
  po.split = split_path;
  po.cache_dir = c.cache_dir;
  po.image_size = c.image_size;
  po.seed = c.seed;
  po.threads = threads;
  std::fprintf(stderr, "run: stage pretrain -> %s\n", po.out.c_str());
  const train::PretrainResult r = train::run_pretrain(po);
  if (r.interrupted)
    throw std::runtime_error("interrupted during pretraining; rerun the same command to resume");
  summary["pretrain"] = {{"epochs", r.epochs_done},
                         {"last_epoch_loss", r.last_epoch_loss},
                         {"backbone", r.backbone_path}};
  return r.backbone_path;
}

// A classifier, then its evaluation on val and test (the report on test).
json classify(const ProtocolConfig& c, const std::string& name, const std::string& init,
              train::ClassifierOptions co, const std::string& split_path,
              const std::string& backbone, int threads) {
  co.data = c.data;
  co.out = c.out + "/" + name;
  co.split = split_path;
  co.cache_dir = c.cache_dir;
  co.image_size = c.image_size;
  co.seed = c.seed;
  co.threads = threads;
  co.bootstrap = c.bootstrap;
  co.init = init;
  co.backbone = init == "simclr" ? backbone : "";
  std::fprintf(stderr, "run: stage %s (%s init) -> %s\n", name.c_str(), init.c_str(),
               co.out.c_str());
  const train::ClassifierResult r = train::run_classifier(co);
  if (r.interrupted)
    throw std::runtime_error("interrupted during " + name + "; rerun the same command to resume");
  EvaluateOptions eo;
  eo.run = co.out;
  eo.bootstrap = c.bootstrap;
  eo.threads = threads;
  eo.part = "val";
  eo.report = false;
  run_evaluate(eo);
  eo.part = "test";
  eo.report = true;
  const json test = run_evaluate(eo);
  return {{"init", init},
          {"best_epoch", r.best_epoch},
          {"val_auroc", r.best_val_auroc},
          {"threshold", r.threshold},
          {"test", summary_of(test)},
          {"report", co.out + "/report.html"}};
}

}  // namespace

json run_protocol(const ProtocolConfig& c, int threads) {
  fs::create_directories(c.out);
  util::atomic_write(c.out + "/run_config.json", c.source.dump(2));
  util::install_stop_handlers();
  const std::string split_path = make_split(c);
  json summary = {{"config", c.path}, {"out", c.out}};
  const std::string backbone = c.pretrain ? pretrain(c, split_path, threads, summary) : "";
  summary["classifier"] = classify(c, "classifier", c.pretrain ? "simclr" : "random", c.classifier,
                                   split_path, backbone, threads);
  if (c.baseline)
    summary["baseline"] =
        classify(c, "baseline", "random", *c.baseline, split_path, backbone, threads);
  util::atomic_write(c.out + "/summary.json", summary.dump(2));
  return summary;
}

json run_protocol(const std::string& config_path, int threads) {
  return run_protocol(read_protocol_config(config_path), threads);
}

}  // namespace wristssl::study
