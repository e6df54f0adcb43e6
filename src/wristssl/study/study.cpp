#include "wristssl/study/study.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "wristssl/data/split.h"
#include "wristssl/models/classifier.h"
#include "wristssl/report/study_page.h"
#include "wristssl/study/analysis.h"
#include "wristssl/study/cross_validation.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/stop_signal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::study {
namespace {

// The config as the folder records it: as written, with the folder it ran in (--out may move it).
json recorded_config(const StudyConfig& c) {
  json j = c.source;
  j["out"] = c.out;
  return j;
}

data::Dataset load_labelled(const StudyConfig& c) {
  const data::Dataset labelled = data::load_dataset(c.data);
  if (labelled.class_names.size() != 2)
    throw std::runtime_error(c.data.data + ": the study needs two classes");
  return labelled;
}

// A long study on an untuned machine measures its compute configuration first (about half a
// minute): its pretrainings alone may each be below pretrain's own threshold, and the study as a
// whole is hours.
void tune_if_long(const StudyConfig& c, size_t labelled, size_t pool, int threads) {
  if (train::should_tune_first(threads, c.precision, study_training_views(c, labelled, pool))) {
    std::fprintf(
        stderr,
        "study: a long study on an untuned machine: measuring the compute configuration first\n");
    train::run_tune(train::TuneOptions());
  }
}

// The pretraining pool: disjoint from every labelled image and its group; written as a split over
// the pool
// ("train" may be pretrained on, "test" is kept out) with the excluded images and why. Returns its
// size.
size_t write_pretraining_pool(const StudyConfig& c, const data::Dataset& labelled) {
  const data::Dataset pool = data::load_dataset(*c.pretrain_data);
  std::vector<std::string> excluded;
  const bool compare_groups = c.pool_groups && !c.pretrain_data->group_column.empty();
  const std::vector<int> keep = pretraining_pool(pool, labelled, compare_groups, &excluded);
  if (keep.empty())
    throw std::runtime_error(
        "study: the pretraining pool is empty once the labelled images are removed");
  data::Split pool_split;
  pool_split.parts.assign(pool.records.size(), data::Part::kTest);
  for (int i : keep) pool_split.parts[i] = data::Part::kTrain;
  std::string excluded_text;
  for (const auto& e : excluded) excluded_text += e + "\n";
  util::atomic_write(c.out + "/pretrain_excluded.txt", excluded_text);
  data::save_split(c.out + "/pretrain_pool.json", pool, pool_split);
  std::fprintf(
      stderr,
      "study: pretraining pool %zu of %zu images (%zu excluded: labelled, or sharing a group)\n",
      keep.size(), pool.records.size(), excluded.size());
  return keep.size();
}

// One pretraining, resumed or skipped when done; returns its backbone.
std::string run_pretraining(const StudyConfig& c, const std::string& name, int threads,
                            Timing& timing) {
  train::PretrainOptions po = study_pretrain_options(c, name);
  po.data = *c.pretrain_data;
  po.threads = threads;
  std::fprintf(stderr, "study: pretraining '%s' (%s) -> %s\n", name.c_str(), po.method.c_str(),
               po.out.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const bool done_before = fs::exists(po.out + "/backbone.pt") && fs::exists(po.out + "/done.json");
  const train::PretrainResult r = train::run_pretrain(po);
  if (r.interrupted)
    throw std::runtime_error("interrupted during pretraining; rerun the same command to resume");
  if (!done_before) {
    timing.add(name == "pretrain" ? name : "pretrain/" + name, seconds_since(t0));
    util::atomic_write(
        po.out + "/done.json",
        json{{"epochs", r.epochs_done}, {"last_epoch_loss", r.last_epoch_loss}}.dump(2));
  }
  return r.backbone_path;
}

// The supervised pretraining's split: the pool's images (pretrain_pool.json's "train") divided into
// training and validation by group; every other image kept out as "test".
void write_supervised_split(const StudyConfig& c, const std::string& path) {
  const data::Dataset pool = data::load_dataset(*c.pretrain_data);
  if (pool.class_names.size() != 2) {
    throw std::runtime_error(c.pretrain_data->data +
                             ": a supervised pretraining needs the pool's labels (two classes)");
  }
  const data::Split pool_split = data::load_split(c.out + "/pretrain_pool.json", pool);
  const std::vector<int> keep = pool_split.indices(data::Part::kTrain);
  const std::vector<int> bins =
      data::assign_groups(pool, keep, {1 - c.val_fraction, c.val_fraction}, c.seed);
  data::Split s;
  s.parts.assign(pool.records.size(), data::Part::kTest);
  for (size_t k = 0; k < keep.size(); ++k)
    s.parts[keep[k]] = bins[k] == 0 ? data::Part::kTrain : data::Part::kVal;
  data::save_split(path, pool, s);
}

// Labelled transfer: the fracture classifier trained on the pool's labels (boxes too, when the
// recipe uses them); its backbone becomes the pretraining's backbone.pt, and the run's config.json
// beside it carries the normalisation the arms take. Resumed, or skipped when done.
std::string run_supervised_pretraining(const StudyConfig& c, const std::string& name,
                                       const std::map<std::string, std::string>& backbones,
                                       int threads, Timing& timing) {
  train::ClassifierOptions co = study_supervised_options(c, name, backbones);
  co.threads = threads;
  const std::string backbone = co.out + "/backbone.pt";
  if (fs::exists(backbone) && fs::exists(co.out + "/done.json")) return backbone;
  fs::create_directories(co.out);
  if (!fs::exists(co.split)) write_supervised_split(c, co.split);
  std::fprintf(stderr, "study: supervised pretraining '%s' on the pool's labels%s -> %s\n",
               name.c_str(), co.data.boxes.empty() ? "" : " and boxes", co.out.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const train::ClassifierResult r = train::run_classifier(co);
  if (r.interrupted)
    throw std::runtime_error("interrupted during pretraining; rerun the same command to resume");
  models::Classifier model(2, models::Pooling{co.pooling, co.pool_sharpness});
  const std::string config = train::load_weights(r.model_path, *model, "classifier");
  train::save_weights(backbone, *model->backbone, "backbone", config);
  timing.add("pretrain/" + name, seconds_since(t0));
  util::atomic_write(co.out + "/done.json",
                     json{{"best_epoch", r.best_epoch}, {"val_auroc", r.best_val_auroc}}.dump(2));
  return backbone;
}

// Every pretraining an arm uses, each serving every fold; returns pretraining name -> backbone.pt.
std::map<std::string, std::string> run_pretrainings(const StudyConfig& c,
                                                    const data::Dataset& labelled, int threads,
                                                    Timing& timing) {
  std::map<std::string, std::string> backbones;
  const std::vector<std::string> used = c.used_pretrainings();
  if (used.empty()) {
    tune_if_long(c, labelled.records.size(), 0, threads);
    return backbones;
  }
  const size_t pool = write_pretraining_pool(c, labelled);
  tune_if_long(c, labelled.records.size(), pool, threads);
  // Self-supervised ones first: a supervised pretraining may start from one of them.
  for (const std::string& name : used) {
    if (!c.pretrainings.at(name).supervised)
      backbones[name] = run_pretraining(c, name, threads, timing);
  }
  for (const std::string& name : used) {
    if (c.pretrainings.at(name).supervised)
      backbones[name] = run_supervised_pretraining(c, name, backbones, threads, timing);
  }
  return backbones;
}

// Every arm at 100% of the labels on all the labelled images (validation carved out), as a bundle.
json train_final_models(const StudyConfig& c, const data::Dataset& labelled,
                        const std::map<std::string, std::string>& backbones, int threads,
                        Timing& timing) {
  json finals = json::object();
  if (!c.final_models) return finals;
  const std::string split = c.out + "/splits/final.json";
  if (!fs::exists(split))
    data::save_split(split, labelled, data::make_split(labelled, {c.val_fraction, 0.0, c.seed}));
  for (const Arm& arm : c.arms) {
    const std::string dir = c.out + "/" + arm.name;
    const auto t0 = std::chrono::steady_clock::now();
    if (!fs::exists(dir + "/final.json")) {
      std::fprintf(stderr,
                   "study: final model %s on all the labelled images -> %s/model.wristssl\n",
                   arm.name.c_str(), dir.c_str());
      const train::ClassifierResult r = train::run_classifier(
          arm_run_options(c, arm, dir, split, 1.0, c.seed, backbones, threads));
      if (r.interrupted)
        throw std::runtime_error("interrupted in " + dir + "; rerun the same command to resume");
      util::atomic_write(dir + "/final.json", json{{"best_epoch", r.best_epoch},
                                                   {"val_auroc", r.best_val_auroc},
                                                   {"bundle", r.bundle_path},
                                                   {"seconds", seconds_since(t0)}}
                                                  .dump(2));
      drop_checkpoint(dir);
      timing.add("final/" + arm.name, seconds_since(t0));
    }
    finals[arm.name] = json::parse(util::read_text(dir + "/final.json"));
  }
  return finals;
}

void write_study(const StudyConfig& c, const json& study) {
  util::atomic_write(c.out + "/study.json", study.dump(2));
  util::atomic_write(c.out + "/study.md", report::render_study_markdown(study));
  util::atomic_write(c.out + "/study.html", report::render_study_html(study));
  std::fprintf(stderr, "%s", report::render_study_markdown(study).c_str());
  std::fprintf(stderr, "study: wrote %s/study.html, study.md and study.json\n", c.out.c_str());
}

}  // namespace

json run_study(const StudyConfig& c, int threads) {
  fs::create_directories(c.out + "/splits");
  util::atomic_write(c.out + "/study_config.json", recorded_config(c).dump(2));
  util::install_stop_handlers();
  Timing timing(c.out + "/timing.json");

  const data::Dataset labelled = load_labelled(c);
  write_folds(c, labelled);
  std::fprintf(stderr,
               "study: %zu labelled images, %d folds x %zu seeds, %zu fractions, %zu arms\n",
               labelled.records.size(), c.folds, c.seeds.size(), c.fractions.size(), c.arms.size());
  const std::map<std::string, std::string> backbones =
      run_pretrainings(c, labelled, threads, timing);
  const CvResults results = run_cross_validation(c, backbones, threads, timing);
  const json rows = arm_rows(c, results);
  const json paired = comparisons(c, results);
  const json finals = train_final_models(c, labelled, backbones, threads, timing);

  json study = {{"config", recorded_config(c)},
                {"labelled_images", labelled.records.size()},
                {"folds", c.folds},
                {"seeds", c.seeds},
                {"fractions", c.fractions},
                {"arms", c.arm_names()},
                {"baseline", c.baseline_arm},
                {"rows", rows},
                {"comparisons", paired},
                {"final_models", finals},
                {"timing", timing.all()}};
  study["verdicts"] = verdicts(c, rows);
  write_study(c, study);
  return study;
}

}  // namespace wristssl::study
