#include "wristssl/train/study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "wristssl/data/split.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/paired.h"
#include "wristssl/report/svg_plot.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/common.h"
#include "wristssl/train/evaluate.h"
#include "wristssl/train/options_json.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {
namespace {

const char* const kKeys[] = {"description", "out",       "data",       "pretrain_data", "pool_groups", "seed",
                             "seeds",       "folds",     "val_fraction", "fractions",   "image_size",  "cache_dir",
                             "bootstrap",   "pretrain",  "pretrainings", "classifier", "arms",          "baseline_arm", "epochs_rule",
                             "final_models", "quick",     "compare"};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string percent_name(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gpct", fraction * 100);
  return buf;
}

// One scored test image of one classifier run.
struct Scored {
  std::string path, group;
  int label = 0;
  double score = 0;  // the model's log-odds (margin): AUROC and DeLong use its order
};

std::vector<Scored> read_scores(const std::string& csv_path) {
  const util::CsvTable t = util::read_csv(csv_path);
  const int p = t.require_column("path", csv_path), g = t.require_column("group", csv_path),
            l = t.require_column("label", csv_path), m = t.require_column("margin", csv_path);
  std::vector<Scored> out;
  for (const auto& row : t.rows) out.push_back({row[p], row[g], std::stoi(row[l]), std::stod(row[m])});
  return out;
}

double auroc_of(const std::vector<Scored>& s) {
  std::vector<int> labels;
  std::vector<double> scores;
  for (const auto& x : s) labels.push_back(x.label), scores.push_back(x.score);
  try {
    return metrics::auroc(labels, scores);
  } catch (const std::exception&) {
    return kNaN;  // one class only in this fold (tiny data)
  }
}

json interval_json(const metrics::MeanInterval& m) {
  return {{"mean", m.mean}, {"lo", m.lo}, {"hi", m.hi}, {"sd", m.sd}, {"n", m.n}};
}

// The accumulated wall time per stage, kept across invocations (a resumed study adds to it).
class Timing {
 public:
  explicit Timing(std::string path) : path_(std::move(path)) {
    if (fs::exists(path_)) j_ = json::parse(util::read_text(path_));
  }
  void add(const std::string& stage, double seconds) {
    j_[stage] = j_.value(stage, 0.0) + seconds;
    util::atomic_write(path_, j_.dump(2));
  }
  const json& all() const { return j_; }

 private:
  std::string path_;
  json j_ = json::object();
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A finished run's checkpoint only served to resume it: its weights are in model.pt and the bundle, and the
// study marks the run done. About 90 MB each (weights and momentum), 5.4 GB over the 60 runs of the README's
// study, so it goes.
void drop_checkpoint(const std::string& dir) {
  std::error_code ec;
  fs::remove(dir + "/checkpoint.pt", ec);
}

}  // namespace

json quick_study_config(const std::string& out) {
  json cfg = json::parse(R"({
    "description": "--quick: the study's code end to end on the bundled sample (80 frontal FracAtlas views labelled; the other views, minus any duplicate cluster that holds a labelled image, as the pretraining pool). Tiny: it checks the machinery, not the science.",
    "data": {"data": "samples/fracatlas/labels.csv", "group_column": "dup_cluster", "where": ["frontal=1"]},
    "pretrain_data": {"data": "samples/fracatlas/labels.csv", "group_column": "dup_cluster"},
    "seed": 1, "seeds": [1], "folds": 2, "val_fraction": 0.25, "fractions": [0.5, 1.0],
    "image_size": 64, "cache_dir": ".wristssl-cache", "bootstrap": 200,
    "pretrainings": {
      "simclr": {"method": "simclr", "epochs": 2, "batch_size": 16, "lr": 0.05, "warmup_epochs": 0, "temperature": 0.5,
                 "crop_size": 56, "knn_every": 0},
      "dcl": {"method": "dcl", "epochs": 2, "batch_size": 16, "lr": 0.05, "warmup_epochs": 0, "temperature": 0.2,
              "crop_size": 56, "knn_every": 0},
      "moco": {"method": "moco", "epochs": 2, "batch_size": 16, "lr": 0.05, "warmup_epochs": 0, "temperature": 0.2,
               "crop_size": 56, "knn_every": 0, "moco_queue": 64}
    },
    "classifier": {"crop_size": 56, "batch_size": 8, "finetune_epochs": 2, "lr_finetune": 0.01,
                   "warmup_epochs": 1, "bootstrap": 200},
    "arms": [
      {"name": "scratch", "init": "random", "probe_epochs": 0},
      {"name": "simclr-lp", "init": "simclr", "pretraining": "simclr", "bn_reestimate": true, "probe_method": "logistic",
       "probe_epochs": 1, "finetune_epochs": 0},
      {"name": "moco-lp", "init": "simclr", "pretraining": "moco", "bn_reestimate": true, "probe_method": "logistic",
       "probe_epochs": 1, "finetune_epochs": 0},
      {"name": "dcl-lpft", "init": "simclr", "pretraining": "dcl", "bn_reestimate": true, "probe_method": "logistic",
       "probe_epochs": 1, "backbone_lr_scale": 0.3}
    ],
    "epochs_rule": "sqrt", "final_models": true,
    "compare": [["moco-lp", "simclr-lp"]]
  })");
  cfg["out"] = out;
  return cfg;
}

std::vector<int> pretraining_pool(const data::Dataset& pool, const data::Dataset& labelled, bool compare_groups,
                                  std::vector<std::string>* excluded) {
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

int epochs_for_fraction(int epochs, double fraction, const std::string& rule) {
  if (epochs <= 0) return epochs;
  if (rule == "same") return epochs;
  if (rule == "sqrt") return std::max(1, static_cast<int>(std::lround(epochs / std::sqrt(fraction))));
  throw std::runtime_error("epochs_rule must be 'same' or 'sqrt', not '" + rule + "'");
}

namespace {

// The study-wide settings that its pretrainings and its classifier runs share, with their defaults.
uint64_t study_seed(const json& cfg) { return cfg.value("seed", uint64_t{1}); }
std::string study_cache_dir(const json& cfg) { return cfg.value("cache_dir", std::string(".wristssl-cache")); }
int study_image_size(const json& cfg) { return cfg.value("image_size", 512); }

// The study's pretrainings by name: "pretrainings", plus a single "pretrain" under that name.
json study_pretrainings(const json& cfg) {
  json pretrainings = cfg.value("pretrainings", json::object());
  if (cfg.contains("pretrain")) pretrainings["pretrain"] = cfg["pretrain"];
  return pretrainings;
}

// The pretraining an arm names, or the only one configured; may name none or one not configured.
std::string arm_pretraining(const json& arm, const json& pretrainings) {
  std::string name = arm.value("pretraining", std::string());
  if (name.empty() && pretrainings.size() == 1) name = pretrainings.begin().key();
  return name;
}

// An arm's classifier recipe: the "classifier" section, then the arm's own keys over it.
ClassifierOptions arm_classifier_options(const json& cfg, const json& arm) {
  ClassifierOptions co;
  co.init = "simclr";
  from_json(config_section(cfg, "classifier"), co);
  json overrides = arm;
  overrides.erase("name");
  overrides.erase("pretraining");
  from_json(overrides, co);
  return co;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> study_comparisons(const json& cfg,
                                                                  const std::vector<std::string>& arms) {
  std::vector<std::pair<std::string, std::string>> pairs;
  const json c = cfg.value("compare", json::array());
  if (!c.is_array()) throw std::runtime_error("study config: 'compare' must be a list of [arm, other arm] pairs");
  for (const auto& p : c) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
      throw std::runtime_error("study config: each 'compare' entry must be [arm, other arm], not " + p.dump());
    }
    const std::string a = p[0], b = p[1];
    for (const std::string& name : {a, b}) {
      if (std::find(arms.begin(), arms.end(), name) == arms.end()) {
        throw std::runtime_error("study config: 'compare' names arm '" + name + "', which is not in 'arms'");
      }
    }
    if (a == b) throw std::runtime_error("study config: 'compare' pairs arm '" + a + "' with itself");
    pairs.emplace_back(a, b);
  }
  return pairs;
}

PretrainOptions study_pretrain_options(const json& cfg, const std::string& name) {
  const json pretrainings = study_pretrainings(cfg);
  if (!pretrainings.contains(name)) throw std::runtime_error("study config: no pretraining '" + name + "'");
  PretrainOptions po;
  from_json(pretrainings[name], po);
  const std::string out = cfg.at("out").get<std::string>();
  po.out = out + "/pretrain" + (name == "pretrain" ? std::string() : "-" + name);
  po.split = out + "/pretrain_pool.json";
  po.cache_dir = study_cache_dir(cfg);
  po.image_size = study_image_size(cfg);
  // A pretraining's own "seed" makes it a further draw of the same recipe; otherwise the study's.
  if (!pretrainings[name].contains("seed")) po.seed = study_seed(cfg);
  return po;
}

double study_training_views(const json& cfg, size_t labelled, size_t pool) {
  const json pretrainings = study_pretrainings(cfg);
  const std::string rule = cfg.value("epochs_rule", std::string("sqrt"));
  const double k = cfg.value("folds", 5);
  const double train_share = (k - 1) / k * (1 - cfg.value("val_fraction", 0.15));
  const double runs_per_fraction = k * static_cast<double>(cfg.value("seeds", std::vector<uint64_t>{1}).size());
  double views = 0;
  std::set<std::string> pretrained;
  for (const auto& arm : cfg.at("arms")) {
    const ClassifierOptions co = arm_classifier_options(cfg, arm);
    for (double f : cfg.value("fractions", std::vector<double>{0.1, 0.25, 1.0})) {
      views += runs_per_fraction * epochs_for_fraction(co.finetune_epochs, f, rule) * f * train_share *
               static_cast<double>(labelled);
    }
    const std::string name = arm_pretraining(arm, pretrainings);
    if (co.init == "simclr" && pretrainings.contains(name)) pretrained.insert(name);
  }
  for (const std::string& name : pretrained) {
    PretrainOptions po;
    from_json(pretrainings[name], po);
    views += 2.0 * po.epochs * static_cast<double>(pool);
  }
  return views;
}

json run_study(const json& cfg, int threads) {
  for (const auto& [k, v] : cfg.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), k) == std::end(kKeys)) {
      throw std::runtime_error("study config: unknown key '" + k + "'");
    }
  }
  const std::string out = cfg.at("out").get<std::string>();
  fs::create_directories(out + "/splits");
  util::atomic_write(out + "/study_config.json", cfg.dump(2));
  const uint64_t base_seed = study_seed(cfg);
  const std::vector<uint64_t> seeds = cfg.value("seeds", std::vector<uint64_t>{base_seed});
  const int k = cfg.value("folds", 5);
  const double val_fraction = cfg.value("val_fraction", 0.15);
  const std::vector<double> fractions = cfg.value("fractions", std::vector<double>{0.1, 0.25, 1.0});
  const std::string cache_dir = study_cache_dir(cfg);
  const int image_size = study_image_size(cfg);
  const int bootstrap = cfg.value("bootstrap", 2000);
  const std::string epochs_rule = cfg.value("epochs_rule", std::string("sqrt"));
  const std::string baseline = cfg.value("baseline_arm", std::string("scratch"));
  const json arms = cfg.at("arms");
  if (!arms.is_array() || arms.empty()) throw std::runtime_error("study config: 'arms' must be a non-empty array");
  bool has_baseline = false;
  std::vector<std::string> arm_names;
  for (const auto& a : arms) {
    const std::string name = a.at("name").get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "cv" || name == "splits" || name == "pretrain") {
      throw std::runtime_error("study config: arm name '" + name + "' is not usable as a folder name");
    }
    if (std::find(arm_names.begin(), arm_names.end(), name) != arm_names.end()) {
      throw std::runtime_error("study config: arm '" + name + "' appears twice");
    }
    arm_names.push_back(name);
    has_baseline = has_baseline || name == baseline;
  }
  if (!has_baseline) throw std::runtime_error("study config: no arm named '" + baseline + "' (baseline_arm)");
  const std::vector<std::pair<std::string, std::string>> compare = study_comparisons(cfg, arm_names);
  for (double f : fractions) {
    if (!(f > 0 && f <= 1)) throw std::runtime_error("study config: label fraction " + std::to_string(f) + " not in (0, 1]");
  }
  install_stop_handlers();
  Timing timing(out + "/timing.json");

  // 1. Labelled data and folds, per seed: whole groups per fold, stratified by label.
  data::DatasetOptions data;
  data_options_from_json(cfg.at("data"), data);
  const data::Dataset labelled = data::load_dataset(data);
  if (labelled.class_names.size() != 2) throw std::runtime_error(data.data + ": the study needs two classes");
  std::map<uint64_t, std::vector<int>> folds;
  for (uint64_t s : seeds) {
    folds[s] = data::make_folds(labelled, k, s);
    json fj = json::array();
    for (size_t i = 0; i < labelled.records.size(); ++i) {
      const auto& r = labelled.records[i];
      fj.push_back({{"path", r.path}, {"group", r.group}, {"label", r.label}, {"fold", folds[s][i]}});
    }
    util::atomic_write(out + "/splits/folds-seed" + std::to_string(s) + ".json", fj.dump(1));
    for (int f = 0; f < k; ++f) {
      const std::string path = out + "/splits/seed" + std::to_string(s) + "-fold" + std::to_string(f) + ".json";
      if (!fs::exists(path)) data::save_split(path, labelled, data::fold_split(labelled, folds[s], f, val_fraction, s));
    }
  }
  std::fprintf(stderr, "study: %zu labelled images, %d folds x %zu seeds, %zu fractions, %zu arms\n",
               labelled.records.size(), k, seeds.size(), fractions.size(), arm_names.size());

  // A long study on an untuned machine measures its compute configuration first (about half a minute): its
  // pretrainings alone may each be below pretrain's own threshold, and the study as a whole is hours.
  auto tune_if_long = [&](size_t pool) {
    const std::string precision = config_section(cfg, "classifier").value("precision", std::string("auto"));
    if (should_tune_first(threads, precision, study_training_views(cfg, labelled.records.size(), pool))) {
      std::fprintf(stderr, "study: a long study on an untuned machine: measuring the compute configuration first\n");
      run_tune(TuneOptions());
    }
  };

  // 2. The pretraining pool: disjoint from every labelled image and its group. Each pretraining (one,
  // "pretrain", or several named in "pretrainings", e.g. one per method) serves every fold.
  json pretrainings = study_pretrainings(cfg);
  std::map<std::string, std::string> pretraining_of_arm;  // SimCLR arms only
  for (const auto& a : arms) {
    if (a.value("init", config_section(cfg, "classifier").value("init", std::string("simclr"))) != "simclr") continue;
    const std::string name = arm_pretraining(a, pretrainings);
    if (!pretrainings.contains(name)) {
      throw std::runtime_error("study config: arm '" + a.at("name").get<std::string>() + "' needs a pretraining" +
                               (name.empty() ? std::string(" (name one with \"pretraining\")") : " '" + name + "', which is not configured"));
    }
    pretraining_of_arm[a.at("name").get<std::string>()] = name;
  }
  std::map<std::string, std::string> backbones;
  if (!pretraining_of_arm.empty()) {
    if (!cfg.contains("pretrain_data")) throw std::runtime_error("study config: SimCLR arms need 'pretrain_data'");
    data::DatasetOptions pool_options;
    data_options_from_json(cfg.at("pretrain_data"), pool_options);
    const data::Dataset pool = data::load_dataset(pool_options);
    std::vector<std::string> excluded;
    const bool compare_groups = cfg.value("pool_groups", true) && !pool_options.group_column.empty();
    const std::vector<int> keep = pretraining_pool(pool, labelled, compare_groups, &excluded);
    if (keep.empty()) throw std::runtime_error("study: the pretraining pool is empty once the labelled images are removed");
    // A split file over the pool: "train" may be pretrained on, "test" is kept out.
    data::Split pool_split;
    pool_split.parts.assign(pool.records.size(), data::Part::kTest);
    for (int i : keep) pool_split.parts[i] = data::Part::kTrain;
    util::atomic_write(out + "/pretrain_excluded.txt", [&] {
      std::string s;
      for (const auto& e : excluded) s += e + "\n";
      return s;
    }());
    data::save_split(out + "/pretrain_pool.json", pool, pool_split);
    std::fprintf(stderr, "study: pretraining pool %zu of %zu images (%zu excluded: labelled, or sharing a group)\n",
                 keep.size(), pool.records.size(), excluded.size());
    tune_if_long(keep.size());
    std::set<std::string> needed;
    for (const auto& [arm, name] : pretraining_of_arm) needed.insert(name);
    for (const std::string& name : needed) {
      PretrainOptions po = study_pretrain_options(cfg, name);
      po.data = pool_options;
      po.threads = threads;
      std::fprintf(stderr, "study: pretraining '%s' (%s) -> %s\n", name.c_str(), po.method.c_str(), po.out.c_str());
      const auto t0 = std::chrono::steady_clock::now();
      const bool done_before = fs::exists(po.out + "/backbone.pt") && fs::exists(po.out + "/done.json");
      const PretrainResult r = run_pretrain(po);
      if (r.interrupted) throw std::runtime_error("interrupted during pretraining; rerun the same command to resume");
      if (!done_before) {
        timing.add(name == "pretrain" ? name : "pretrain/" + name, seconds_since(t0));
        util::atomic_write(po.out + "/done.json",
                           json{{"epochs", r.epochs_done}, {"last_epoch_loss", r.last_epoch_loss}}.dump(2));
      }
      backbones[name] = r.backbone_path;
    }
  }

  if (pretraining_of_arm.empty()) tune_if_long(0);

  // 3. The cross-validation runs: seeds x folds x fractions x arms, each resumable, none redone.
  const size_t total_runs = seeds.size() * k * fractions.size() * arm_names.size();
  size_t run_index = 0;
  std::map<std::tuple<std::string, double, uint64_t, int>, json> results;  // (arm, fraction, seed, fold)
  auto classifier_options = [&](const json& arm, const std::string& dir, const std::string& split, double fraction,
                                uint64_t seed) {
    ClassifierOptions co = arm_classifier_options(cfg, arm);
    co.data = data;
    co.out = dir;
    co.split = split;
    co.cache_dir = cache_dir;
    co.image_size = image_size;
    co.seed = seed;
    co.threads = threads;
    co.label_fraction = fraction;
    co.finetune_epochs = epochs_for_fraction(co.finetune_epochs, fraction, epochs_rule);
    if (co.probe_method != "logistic") co.probe_epochs = epochs_for_fraction(co.probe_epochs, fraction, epochs_rule);
    const auto it = pretraining_of_arm.find(arm.at("name").get<std::string>());
    co.backbone = co.init == "simclr" && it != pretraining_of_arm.end() ? backbones.at(it->second) : "";
    return co;
  };
  for (uint64_t s : seeds) {
    for (int f = 0; f < k; ++f) {
      const std::string split = out + "/splits/seed" + std::to_string(s) + "-fold" + std::to_string(f) + ".json";
      for (double frac : fractions) {
        for (const auto& arm : arms) {
          const std::string name = arm.at("name").get<std::string>();
          const std::string dir = out + "/cv/" + name + "/seed" + std::to_string(s) + "-fold" + std::to_string(f) + "-" +
                                  percent_name(frac);
          ++run_index;
          const std::string done = dir + "/done.json";
          if (fs::exists(done)) {
            results[{name, frac, s, f}] = json::parse(util::read_text(done));
            continue;
          }
          std::fprintf(stderr, "study: run %zu/%zu: %s, seed %llu, fold %d/%d, %g%% of the labels -> %s\n", run_index,
                       total_runs, name.c_str(), static_cast<unsigned long long>(s), f + 1, k, frac * 100, dir.c_str());
          const auto t0 = std::chrono::steady_clock::now();
          // The fold's own seed: label subsets and initial weights differ between folds and seeds.
          const ClassifierOptions co = classifier_options(arm, dir, split, frac, s * 1000 + static_cast<uint64_t>(f));
          const ClassifierResult r = run_classifier(co);
          if (r.interrupted) throw std::runtime_error("interrupted in " + dir + "; rerun the same command to resume");
          EvaluateOptions eo;
          eo.run = dir;
          eo.part = "test";
          eo.report = false;
          eo.bootstrap = 200;
          eo.threads = threads;
          eo.cache_dir = cache_dir;
          run_evaluate(eo);
          const std::vector<Scored> scored = read_scores(dir + "/scores_test.csv");
          json sj = json::array();
          for (const auto& x : scored) sj.push_back({x.path, x.group, x.label, x.score});
          const json cfgj = json::parse(util::read_text(dir + "/config.json"));
          const double seconds = seconds_since(t0);
          json d = {{"arm", name},
                    {"seed", s},
                    {"fold", f},
                    {"fraction", frac},
                    {"train_images", cfgj["resolved"]["train_images"]},
                    {"best_epoch", r.best_epoch},
                    {"val_auroc", r.best_val_auroc},
                    {"test_auroc", auroc_of(scored)},
                    {"seconds", seconds},
                    {"scores", sj}};
          if (std::isnan(d["test_auroc"].get<double>())) d["test_auroc"] = nullptr;
          util::atomic_write(done, d.dump());
          drop_checkpoint(dir);
          timing.add("cv/" + name + "/" + percent_name(frac), seconds);
          results[{name, frac, s, f}] = d;
          std::fprintf(stderr, "study: %s fold %d %g%%: test AUROC %s (val %.4f, best epoch %d) in %.0f s\n", name.c_str(),
                       f + 1, frac * 100, d["test_auroc"].dump().c_str(), r.best_val_auroc, r.best_epoch, seconds);
          if (stop_requested()) throw std::runtime_error("stopped; rerun the same command to resume");
        }
      }
    }
  }

  // 4. Analysis: per arm and fraction, across folds x seeds; paired against the baseline arm, and each
  // further pair that "compare" names, on the same images.
  // An arm's test scores at a fraction over the folds of a seed, by image path: every labelled (readable)
  // image once.
  auto out_of_fold = [&](const std::string& arm, double frac, uint64_t s) {
    std::unordered_map<std::string, Scored> by_path;
    for (int f = 0; f < k; ++f) {
      for (const auto& e : results.at({arm, frac, s, f})["scores"]) {
        by_path[e[0].get<std::string>()] = {e[0], e[1], e[2].get<int>(), e[3].get<double>()};
      }
    }
    return by_path;
  };
  // The out-of-fold AUROC of `arm` and, when `other` is not empty, the paired comparison with it on the
  // images both scored: DeLong's test and a bootstrap resampling whole groups.
  auto pooled_paired = [&](const std::string& arm, const std::string& other, double frac, uint64_t s) {
    std::unordered_map<std::string, Scored> mine = out_of_fold(arm, frac, s);
    const std::unordered_map<std::string, Scored> theirs = other.empty() ? mine : out_of_fold(other, frac, s);
    std::vector<int> labels;
    std::vector<double> a, b;
    std::vector<std::string> groups;
    std::vector<std::string> paths;
    for (const auto& [path, x] : mine) paths.push_back(path);
    std::sort(paths.begin(), paths.end());  // a fixed order: the bootstrap is reproducible
    for (const auto& path : paths) {
      const auto it = theirs.find(path);
      if (it == theirs.end()) continue;
      labels.push_back(mine[path].label);
      a.push_back(mine[path].score);
      b.push_back(it->second.score);
      groups.push_back(mine[path].group);
    }
    json sj = {{"seed", s}, {"images", labels.size()}};
    try {
      sj["pooled_auroc"] = metrics::auroc(labels, a);
      if (!other.empty()) {
        const metrics::DeLongResult d = metrics::delong_paired(labels, a, b);
        sj["delong"] = {{"difference", d.difference}, {"lo", d.lo}, {"hi", d.hi}, {"se", d.se}, {"z", d.z},
                        {"p", d.p_value}, {"auroc", d.auroc_a}, {"auroc_baseline", d.auroc_b}};
        const metrics::PairedBootstrap pb = metrics::paired_bootstrap_auroc(labels, a, b, groups, bootstrap, s);
        sj["bootstrap"] = {{"difference", pb.difference}, {"lo", pb.lo}, {"hi", pb.hi},
                           {"share_above_zero", pb.share_above_zero}, {"resamples", pb.used}, {"grouped", true}};
      }
    } catch (const std::exception& e) {
      sj["error"] = e.what();  // e.g. one class only in a tiny sample
    }
    return sj;
  };
  // Per-fold test AUROC differences, arm minus other, over folds x seeds.
  auto fold_paired = [&](const std::string& arm, const std::string& other, double frac) {
    std::vector<double> diffs;
    for (uint64_t s : seeds) {
      for (int f = 0; f < k; ++f) {
        const json& a = results.at({arm, frac, s, f});
        const json& b = results.at({other, frac, s, f});
        if (a["test_auroc"].is_null() || b["test_auroc"].is_null()) continue;
        diffs.push_back(a["test_auroc"].get<double>() - b["test_auroc"].get<double>());
      }
    }
    return diffs;
  };
  json rows = json::array();
  for (double frac : fractions) {
    for (const std::string& name : arm_names) {
      std::vector<double> aurocs;
      for (uint64_t s : seeds) {
        for (int f = 0; f < k; ++f) {
          const json& a = results.at({name, frac, s, f});
          if (!a["test_auroc"].is_null()) aurocs.push_back(a["test_auroc"].get<double>());
        }
      }
      json row = {{"arm", name}, {"fraction", frac}};
      if (!aurocs.empty()) {
        json a = interval_json(metrics::mean_interval(aurocs));
        a["lo"] = std::max(0.0, a["lo"].get<double>());  // a t-interval knows no bounds; an AUROC does
        a["hi"] = std::min(1.0, a["hi"].get<double>());
        row["auroc"] = a;
      }
      if (name != baseline) {
        const std::vector<double> diffs = fold_paired(name, baseline, frac);
        if (!diffs.empty()) row["fold_paired_difference"] = interval_json(metrics::mean_interval(diffs));
      }
      json per_seed = json::array();
      for (uint64_t s : seeds) per_seed.push_back(pooled_paired(name, name == baseline ? "" : baseline, frac, s));
      row["pooled"] = per_seed;
      double seconds = 0;
      for (uint64_t s : seeds) {
        for (int f = 0; f < k; ++f) seconds += results.at({name, frac, s, f}).value("seconds", 0.0);
      }
      row["seconds"] = seconds;
      rows.push_back(row);
    }
  }
  json comparisons = json::array();
  for (const auto& [arm, other] : compare) {
    for (double frac : fractions) {
      json c = {{"arm", arm}, {"against", other}, {"fraction", frac}};
      const std::vector<double> diffs = fold_paired(arm, other, frac);
      if (!diffs.empty()) c["fold_paired_difference"] = interval_json(metrics::mean_interval(diffs));
      json per_seed = json::array();
      for (uint64_t s : seeds) per_seed.push_back(pooled_paired(arm, other, frac, s));
      c["pooled"] = per_seed;
      comparisons.push_back(c);
    }
  }

  // 5. Final models: every arm at 100% of the labels on all the labelled images (validation carved out).
  json finals = json::object();
  if (cfg.value("final_models", true)) {
    const std::string split = out + "/splits/final.json";
    if (!fs::exists(split)) data::save_split(split, labelled, data::make_split(labelled, {val_fraction, 0.0, base_seed}));
    for (const auto& arm : arms) {
      const std::string name = arm.at("name").get<std::string>();
      const std::string dir = out + "/" + name;
      const auto t0 = std::chrono::steady_clock::now();
      const bool done_before = fs::exists(dir + "/final.json");
      if (!done_before) {
        std::fprintf(stderr, "study: final model %s on all the labelled images -> %s/model.wristssl\n", name.c_str(), dir.c_str());
        const ClassifierResult r = run_classifier(classifier_options(arm, dir, split, 1.0, base_seed));
        if (r.interrupted) throw std::runtime_error("interrupted in " + dir + "; rerun the same command to resume");
        util::atomic_write(dir + "/final.json", json{{"best_epoch", r.best_epoch}, {"val_auroc", r.best_val_auroc},
                                                     {"bundle", r.bundle_path}, {"seconds", seconds_since(t0)}}
                                                    .dump(2));
        drop_checkpoint(dir);
        timing.add("final/" + name, seconds_since(t0));
      }
      finals[name] = json::parse(util::read_text(dir + "/final.json"));
    }
  }

  json study = {{"config", cfg},
                {"labelled_images", labelled.records.size()},
                {"folds", k},
                {"seeds", seeds},
                {"fractions", fractions},
                {"arms", arm_names},
                {"baseline", baseline},
                {"rows", rows},
                {"comparisons", comparisons},
                {"final_models", finals},
                {"timing", timing.all()}};
  // The verdict per fraction: the best arm by mean AUROC against the baseline. Picking the best of m arms
  // and then testing it at 5% would find a "win" more often than 5% of the time when none is real, so the
  // verdict's interval and p-value are Bonferroni-adjusted for the m arms compared (95% family-wise); the
  // unadjusted ones stay beside them.
  json verdicts = json::array();
  for (double frac : fractions) {
    const json* best = nullptr;
    int compared = 0;
    for (const auto& row : rows) {
      if (row["fraction"].get<double>() != frac || row["arm"] == baseline || !row.contains("auroc")) continue;
      ++compared;
      if (!best || row["auroc"]["mean"].get<double>() > (*best)["auroc"]["mean"].get<double>()) best = &row;
    }
    if (!best || (*best)["pooled"].empty() || !(*best)["pooled"][0].contains("delong")) continue;
    const json& d = (*best)["pooled"][0]["delong"];
    const double diff = d["difference"].get<double>(), se = d["se"].get<double>();
    const double z = metrics::normal_quantile(1 - 0.025 / compared);
    const double lo = diff - z * se, hi = diff + z * se;
    verdicts.push_back({{"fraction", frac},
                        {"best_arm", (*best)["arm"]},
                        {"difference", diff},
                        {"arms_compared", compared},
                        {"lo", lo},
                        {"hi", hi},
                        {"p", std::min(1.0, compared * d["p"].get<double>())},
                        {"lo_unadjusted", d["lo"]},
                        {"hi_unadjusted", d["hi"]},
                        {"p_unadjusted", d["p"]},
                        {"interval_excludes_zero", lo > 0 || hi < 0},
                        {"meets_target", diff >= 0.03 && lo > 0}});
  }
  study["verdicts"] = verdicts;
  util::atomic_write(out + "/study.json", study.dump(2));
  util::atomic_write(out + "/study.md", render_study_markdown(study));
  util::atomic_write(out + "/study.html", render_study_html(study));
  std::fprintf(stderr, "%s", render_study_markdown(study).c_str());
  std::fprintf(stderr, "study: wrote %s/study.html, study.md and study.json\n", out.c_str());
  return study;
}

namespace {

std::string num(const json& v, int decimals) {
  if (!v.is_number()) return "n/a";
  return report::fixed(v.get<double>(), decimals);
}

std::string interval_text(const json& j, int decimals, bool sign = false) {
  if (!j.is_object() || !j.contains("mean")) return "n/a";
  std::string m = num(j["mean"], decimals);
  if (sign && j["mean"].get<double>() >= 0) m = "+" + m;
  if (j.value("n", 1) < 2) return m;
  return m + " [" + num(j["lo"], decimals) + ", " + num(j["hi"], decimals) + "]";
}

std::string paired_text(const json& j, const char* key, bool p_value) {
  if (!j.contains(key)) return "";
  const json& d = j[key];
  std::string s = (d["difference"].get<double>() >= 0 ? "+" : "") + num(d["difference"], 3) + " [" + num(d["lo"], 3) +
                  ", " + num(d["hi"], 3) + "]";
  if (p_value) {
    const double p = d["p"].get<double>();
    s += p < 0.001 ? ", p<0.001" : ", p=" + report::fixed(p, 3);
  }
  return s;
}


// One row of the study's table as text cells, and the header: the Markdown and the HTML tables both.
std::vector<std::string> table_header(const std::string& baseline) {
  return {"labels", "arm", "AUROC, mean over folds x seeds [95% CI]", "out-of-fold AUROC",
          "difference to " + baseline + ", fold-paired [95% CI]", "DeLong, out-of-fold [95% CI], p",
          "grouped paired bootstrap [95% CI]", "wall time"};
}

std::vector<std::string> table_cells(const json& row, const std::string& baseline) {
  const json pooled = row["pooled"].empty() ? json::object() : row["pooled"][0];
  return {report::fixed(row["fraction"].get<double>() * 100, 0) + "%",
          row["arm"].get<std::string>(),
          interval_text(row.value("auroc", json()), 3),
          num(pooled.value("pooled_auroc", json()), 3),
          row["arm"] == baseline ? "(baseline)" : interval_text(row.value("fold_paired_difference", json()), 3, true),
          paired_text(pooled, "delong", true),
          paired_text(pooled, "bootstrap", false),
          report::fixed(row.value("seconds", 0.0), 0) + " s"};
}

// A further paired comparison ("compare") as text cells, and the header.
std::vector<std::string> comparison_header() {
  return {"labels", "arm", "against", "difference, fold-paired [95% CI]", "DeLong, out-of-fold [95% CI], p",
          "grouped paired bootstrap [95% CI]"};
}

std::vector<std::string> comparison_cells(const json& c) {
  const json pooled = c["pooled"].empty() ? json::object() : c["pooled"][0];
  return {report::fixed(c["fraction"].get<double>() * 100, 0) + "%", c["arm"].get<std::string>(),
          c["against"].get<std::string>(), interval_text(c.value("fold_paired_difference", json()), 3, true),
          paired_text(pooled, "delong", true), paired_text(pooled, "bootstrap", false)};
}

std::string markdown_row(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const auto& c : cells) line += " " + c + " |";
  return line + "\n";
}

// One verdict as a sentence, for the page and the Markdown.
std::string verdict_sentence(const json& v, const std::string& baseline) {
  const double d = v["difference"].get<double>();
  const int compared = v.value("arms_compared", 1);
  return "At " + report::fixed(v["fraction"].get<double>() * 100, 0) + "% of the labels the best arm, " +
         v["best_arm"].get<std::string>() + ", " + (d >= 0 ? "beats " : "trails ") + baseline + " by " +
         report::fixed(std::fabs(d), 3) + " AUROC (DeLong on the out-of-fold scores, 95% CI " +
         (compared > 1 ? "adjusted for the " + std::to_string(compared) + " arms compared, " : std::string()) +
         report::fixed(v["lo"].get<double>(), 3) + " to " + report::fixed(v["hi"].get<double>(), 3) + ", p = " +
         report::fixed(v["p"].get<double>(), 3) + "): " +
         (v["interval_excludes_zero"].get<bool>()
              ? (d > 0 ? "a difference the data resolves." : "the baseline is better, and the data resolves it.")
              : "the interval includes 0: no difference the data can resolve.");
}

}  // namespace

std::string render_study_markdown(const json& study) {
  const std::string baseline = study["baseline"];
  const std::vector<std::string> header = table_header(baseline);
  std::string md = markdown_row(header) + "|";
  for (size_t i = 0; i < header.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& row : study["rows"]) md += markdown_row(table_cells(row, baseline));
  if (!study["verdicts"].empty()) md += "\n";
  for (const auto& v : study["verdicts"]) md += "- " + verdict_sentence(v, baseline) + "\n";
  const json comparisons = study.value("comparisons", json::array());
  if (!comparisons.empty()) {
    md += "\nFurther paired comparisons (the same images for both arms):\n\n" + markdown_row(comparison_header()) + "|";
    for (size_t i = 0; i < comparison_header().size(); ++i) md += "---|";
    md += "\n";
    for (const auto& c : comparisons) md += markdown_row(comparison_cells(c));
  }
  return md;
}

std::string render_study_html(const json& study) {
  using report::html_escape;
  const std::string baseline = study["baseline"];
  const std::vector<std::string> arms = study["arms"];
  // The label-efficiency plot: AUROC against the share of training labels, one line and band per arm.
  double lo = 1, hi = 0;
  for (const auto& row : study["rows"]) {
    if (!row.contains("auroc")) continue;
    lo = std::min(lo, row["auroc"]["lo"].get<double>());
    hi = std::max(hi, row["auroc"]["hi"].get<double>());
  }
  if (lo > hi) lo = 0.4, hi = 1.0;
  report::SvgPlot plot("Label efficiency: test AUROC (mean over folds x seeds, 95% CI)",
                       report::nice_axis(0, 100, 5, "training labels used (%)"),
                       report::nice_axis(std::max(0.0, lo - 0.02), std::min(1.0, hi + 0.02), 5, "AUROC"), 620, 420);
  std::vector<report::LegendEntry> legend;
  for (size_t a = 0; a < arms.size(); ++a) {
    std::vector<report::XY> mean, lower, upper;
    for (const auto& row : study["rows"]) {
      if (row["arm"] != arms[a] || !row.contains("auroc")) continue;
      const double x = row["fraction"].get<double>() * 100;
      mean.push_back({x, row["auroc"]["mean"].get<double>()});
      lower.push_back({x, row["auroc"]["lo"].get<double>()});
      upper.push_back({x, row["auroc"]["hi"].get<double>()});
    }
    const std::string c = "c" + std::to_string(a % 6);
    plot.band(lower, upper, "band " + c);
    plot.line(mean, "line " + c);
    for (const auto& p : mean) {
      plot.point(p, 4, "pt " + c, "", arms[a] + ": " + report::fixed(p.x, 0) + "% of labels, AUROC " + report::fixed(p.y, 3));
    }
    legend.push_back({arms[a], "line", "line " + c});
  }
  plot.legend(legend, report::Corner::kBelow);

  std::string verdict_html;
  for (const auto& v : study["verdicts"]) verdict_html += "<li>" + html_escape(verdict_sentence(v, baseline)) + "</li>\n";
  // The table: the Markdown table's cells.
  std::string table = "<table><thead><tr>";
  for (const auto& h : table_header(baseline)) table += "<th>" + html_escape(h) + "</th>";
  table += "</tr></thead><tbody>\n";
  for (const auto& row : study["rows"]) {
    table += "<tr>";
    for (const auto& c : table_cells(row, baseline)) table += "<td>" + html_escape(c) + "</td>";
    table += "</tr>\n";
  }
  table += "</tbody></table>\n";
  const json comparisons = study.value("comparisons", json::array());
  if (!comparisons.empty()) {
    table += "<h2>Further paired comparisons</h2>\n<p>The same images for both arms.</p>\n<table><thead><tr>";
    for (const auto& h : comparison_header()) table += "<th>" + html_escape(h) + "</th>";
    table += "</tr></thead><tbody>\n";
    for (const auto& c : comparisons) {
      table += "<tr>";
      for (const auto& cell : comparison_cells(c)) table += "<td>" + html_escape(cell) + "</td>";
      table += "</tr>\n";
    }
    table += "</tbody></table>\n";
  }
  std::string timing;
  for (const auto& [stage, secs] : study["timing"].items()) {
    timing += "<tr><td>" + html_escape(stage) + "</td><td>" + report::fixed(secs.get<double>(), 0) + " s</td></tr>";
  }
  const json& cfg = study["config"];
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wristssl study</title><style>\n"
         "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d2733}\n"
         "table{border-collapse:collapse;font-size:14px}td,th{border-bottom:1px solid #dde3ea;padding:4px 8px;text-align:left}td:last-child{white-space:nowrap}\n"
         ":root{--c0:#1f77b4;--c1:#d62728;--c2:#2ca02c;--c3:#9467bd;--c4:#ff7f0e;--c5:#8c564b}\n"
         "svg.plot{display:block;width:100%;height:auto;max-width:680px}\n"
         "svg .plot-title{font-size:14px;font-weight:600}svg .tick{font-size:11px;fill:#4a5562}svg .axis-label{font-size:12px}\n"
         "svg .grid line{stroke:#e9edf1}svg .axes line{stroke:#6b7683}svg .frame{fill:none;stroke:#9aa4af}\n"
         "svg .mark{fill:none;stroke-width:2.2}svg .legend-box{fill:#fff;stroke:#d6dce3}svg .legend-text{font-size:11.5px}\n"
         "svg .legend line{stroke-width:2.2}svg .band{stroke:none;fill-opacity:.15}svg .pt{stroke:#fff;stroke-width:1.5}\n"
         ".c0{stroke:var(--c0);fill:var(--c0)}.c1{stroke:var(--c1);fill:var(--c1)}.c2{stroke:var(--c2);fill:var(--c2)}\n"
         ".c3{stroke:var(--c3);fill:var(--c3)}.c4{stroke:var(--c4);fill:var(--c4)}.c5{stroke:var(--c5);fill:var(--c5)}\n"
         "svg .line{fill:none}\n</style></head><body>\n<h1>Does self-supervised pretraining pay off?</h1>\n<p>" +
         html_escape(cfg.value("description", std::string())) + "</p>\n<p>" + std::to_string(study["labelled_images"].get<size_t>()) +
         " labelled images; grouped stratified " + std::to_string(study["folds"].get<int>()) + "-fold cross-validation over " +
         std::to_string(study["seeds"].size()) +
         " seed(s); every image is scored once per seed by the model that never saw it. AUROC intervals are t-intervals "
         "across folds x seeds; paired comparisons use the same images for both arms.</p>\n<h2>Verdict</h2><ul>" +
         verdict_html + "</ul>\n<figure>" + plot.render("curve", "AUROC against the share of labels, per arm") +
         "</figure>\n<h2>Table</h2>\n" + table + "<h2>Wall time per stage</h2><table>" + timing + "</table>\n</body></html>\n";
}

}  // namespace wristssl::train
