#include "wristssl/study/cross_validation.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <unordered_set>

#include "wristssl/data/split.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/study/evaluate.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/stop_signal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::study {
namespace {

std::vector<Scored> read_scores(const std::string& csv_path) {
  const util::CsvTable t = util::read_csv(csv_path);
  const int p = t.require_column("path", csv_path), g = t.require_column("group", csv_path),
            l = t.require_column("label", csv_path), m = t.require_column("margin", csv_path);
  std::vector<Scored> out;
  for (const auto& row : t.rows)
    out.push_back({row[p], row[g], std::stoi(row[l]), std::stod(row[m])});
  return out;
}

double auroc_of(const std::vector<Scored>& s) {
  std::vector<int> labels;
  std::vector<double> scores;
  for (const auto& x : s) labels.push_back(x.label), scores.push_back(x.score);
  try {
    return metrics::auroc(labels, scores);
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();  // one class only in this fold (tiny data)
  }
}

std::string run_dir(const StudyConfig& c, const std::string& arm, uint64_t seed, int fold,
                    double fraction) {
  return c.out + "/cv/" + arm + "/seed" + std::to_string(seed) + "-fold" + std::to_string(fold) +
         "-" + percent_name(fraction);
}

// Scores the run's test fold (metrics at 200 resamples, no report: the study reports) and records
// its result.
// The test fold's confusion at the run's frozen threshold (chosen on its validation images), from
// its metrics_test.json: what sensitivity and specificity the arm would have delivered.
void add_confusion(json& done, const std::string& dir) {
  const std::string m = dir + "/metrics_test.json";
  if (done.contains("confusion") || !fs::exists(m)) return;
  done["confusion"] = json::parse(util::read_text(m)).at("confusion");
}

json finish_run(const StudyConfig& c, const train::ClassifierResult& r, const std::string& dir,
                const RunKey& key, std::chrono::steady_clock::time_point t0, int threads) {
  EvaluateOptions eo;
  eo.run = dir;
  eo.part = "test";
  eo.report = false;
  eo.bootstrap = 200;
  eo.threads = threads;
  eo.cache_dir = c.cache_dir;
  run_evaluate(eo);
  const std::vector<Scored> scored = read_scores(dir + "/scores_test.csv");
  json sj = json::array();
  for (const auto& x : scored) sj.push_back({x.path, x.group, x.label, x.score});
  const json cfgj = json::parse(util::read_text(dir + "/config.json"));
  const double seconds = seconds_since(t0);  // the run's training and scoring
  const auto& [arm, fraction, seed, fold] = key;
  json d = {{"arm", arm},
            {"seed", seed},
            {"fold", fold},
            {"fraction", fraction},
            {"train_images", cfgj["resolved"]["train_images"]},
            {"best_epoch", r.best_epoch},
            {"val_auroc", r.best_val_auroc},
            {"test_auroc", auroc_of(scored)},
            {"seconds", seconds},
            {"scores", sj}};
  if (std::isnan(d["test_auroc"].get<double>())) d["test_auroc"] = nullptr;
  add_confusion(d, dir);
  return d;
}

// One cross-validation run: trained, scored, recorded in done.json, its checkpoint dropped.
json run_one(const StudyConfig& c, const Arm& arm, const RunKey& key, const std::string& dir,
             const std::map<std::string, std::string>& backbones, int threads, Timing& timing) {
  const auto& [name, frac, s, f] = key;
  const auto t0 = std::chrono::steady_clock::now();
  // The fold's own seed: label subsets and initial weights differ between folds and seeds.
  const train::ClassifierOptions co =
      arm_run_options(c, arm, dir, fold_split_path(c, s, f), frac,
                      s * 1000 + static_cast<uint64_t>(f), backbones, threads);
  const train::ClassifierResult r = train::run_classifier(co);
  if (r.interrupted)
    throw std::runtime_error("interrupted in " + dir + "; rerun the same command to resume");
  const json d = finish_run(c, r, dir, key, t0, threads);
  util::atomic_write(dir + "/done.json", d.dump());
  drop_checkpoint(dir);
  timing.add("cv/" + name + "/" + percent_name(frac), d["seconds"].get<double>());
  std::fprintf(stderr,
               "study: %s fold %d %g%%: test AUROC %s (val %.4f, best epoch %d) in %.0f s\n",
               name.c_str(), f + 1, frac * 100, d["test_auroc"].dump().c_str(), r.best_val_auroc,
               r.best_epoch, d["seconds"].get<double>());
  return d;
}

}  // namespace

Timing::Timing(std::string path) : path_(std::move(path)) {
  if (fs::exists(path_)) j_ = json::parse(util::read_text(path_));
}

void Timing::add(const std::string& stage, double seconds) {
  j_[stage] = j_.value(stage, 0.0) + seconds;
  util::atomic_write(path_, j_.dump(2));
}

std::string percent_name(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gpct", fraction * 100);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void drop_checkpoint(const std::string& dir) {
  std::error_code ec;
  fs::remove(dir + "/checkpoint.pt", ec);
}

std::string fold_split_path(const StudyConfig& c, uint64_t seed, int fold) {
  return c.out + "/splits/seed" + std::to_string(seed) + "-fold" + std::to_string(fold) + ".json";
}

void write_folds(const StudyConfig& c, const data::Dataset& labelled) {
  for (uint64_t s : c.seeds) {
    const std::vector<int> folds = data::make_folds(labelled, c.folds, s);
    json fj = json::array();
    for (size_t i = 0; i < labelled.records.size(); ++i) {
      const auto& r = labelled.records[i];
      fj.push_back({{"path", r.path}, {"group", r.group}, {"label", r.label}, {"fold", folds[i]}});
    }
    util::atomic_write(c.out + "/splits/folds-seed" + std::to_string(s) + ".json", fj.dump(1));
    for (int f = 0; f < c.folds; ++f) {
      const std::string path = fold_split_path(c, s, f);
      if (!fs::exists(path))
        data::save_split(path, labelled, data::fold_split(labelled, folds, f, c.val_fraction, s));
    }
  }
}

std::vector<int> pretraining_pool(const data::Dataset& pool, const data::Dataset& labelled,
                                  bool compare_groups, std::vector<std::string>* excluded) {
  std::unordered_set<std::string> paths, groups;
  for (const auto& r : labelled.records) {
    paths.insert(data::canonical_path(r.path));
    groups.insert(r.group);
  }
  std::vector<int> keep;
  for (size_t i = 0; i < pool.records.size(); ++i) {
    const auto& r = pool.records[i];
    std::string why;
    if (paths.count(data::canonical_path(r.path))) {
      why = "labelled image";
    } else if (compare_groups && groups.count(r.group)) {
      why = "shares group '" + r.group + "' with a labelled image";
    }
    if (why.empty()) {
      keep.push_back(static_cast<int>(i));
    } else if (excluded) {
      excluded->push_back(r.path + ": " + why);
    }
  }
  return keep;
}

train::ClassifierOptions arm_run_options(const StudyConfig& c, const Arm& arm,
                                         const std::string& dir, const std::string& split,
                                         double fraction, uint64_t seed,
                                         const std::map<std::string, std::string>& backbones,
                                         int threads) {
  train::ClassifierOptions co = arm.classifier;
  co.data = c.data;
  co.out = dir;
  co.split = split;
  co.cache_dir = c.cache_dir;
  co.image_size = arm.image_size > 0 ? arm.image_size : c.image_size;
  co.seed = seed;
  co.threads = threads;
  co.label_fraction = fraction;
  co.finetune_epochs = epochs_for_fraction(co.finetune_epochs, fraction, c.epochs_rule);
  if (co.probe_method != "logistic")
    co.probe_epochs = epochs_for_fraction(co.probe_epochs, fraction, c.epochs_rule);
  co.backbone =
      co.init == "simclr" && !arm.pretraining.empty() ? backbones.at(arm.pretraining) : "";
  return co;
}

CvResults run_cross_validation(const StudyConfig& c,
                               const std::map<std::string, std::string>& backbones, int threads,
                               Timing& timing) {
  const size_t total_runs = c.seeds.size() * c.folds * c.fractions.size() * c.arms.size();
  size_t run_index = 0;
  CvResults results;
  for (uint64_t s : c.seeds) {
    for (int f = 0; f < c.folds; ++f) {
      for (double frac : c.fractions) {
        for (const Arm& arm : c.arms) {
          const RunKey key{arm.name, frac, s, f};
          const std::string dir = run_dir(c, arm.name, s, f, frac);
          ++run_index;
          if (fs::exists(dir + "/done.json")) {
            results[key] = json::parse(util::read_text(dir + "/done.json"));
            add_confusion(results[key], dir);  // runs recorded before done.json held it
            continue;
          }
          std::fprintf(stderr,
                       "study: run %zu/%zu: %s, seed %llu, fold %d/%d, %g%% of the labels -> %s\n",
                       run_index, total_runs, arm.name.c_str(), static_cast<unsigned long long>(s),
                       f + 1, c.folds, frac * 100, dir.c_str());
          results[key] = run_one(c, arm, key, dir, backbones, threads, timing);
          if (util::stop_requested())
            throw std::runtime_error("stopped; rerun the same command to resume");
        }
      }
    }
  }
  return results;
}

}  // namespace wristssl::study
