#include "wristssl/study/config.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <stdexcept>

#include "wristssl/study_quick.h"
#include "wristssl/train/options_json.h"
#include "wristssl/util/fs.h"

using nlohmann::json;

namespace wristssl::study {
namespace {

const char* const kKeys[] = {
    "description", "out",          "data",         "pretrain_data", "pool_groups", "seed",
    "seeds",       "folds",        "val_fraction", "fractions",     "image_size",  "cache_dir",
    "bootstrap",   "pretrain",     "pretrainings", "classifier",    "arms",        "baseline_arm",
    "epochs_rule", "final_models", "quick",        "compare"};

[[noreturn]] void refuse(const std::string& why) {
  throw std::runtime_error("study config: " + why);
}

// Throws "PREFIX..." naming what is wrong when `cfg` is not an object or holds a key that `keys`
// does not list (a typo would otherwise leave a default in place silently).
template <size_t N>
void refuse_unknown_keys(const json& cfg, const char* const (&keys)[N], const std::string& prefix) {
  if (!cfg.is_object()) throw std::runtime_error(prefix + "must be a JSON object");
  for (const auto& item : cfg.items()) {
    if (std::find(std::begin(keys), std::end(keys), item.key()) == std::end(keys)) {
      throw std::runtime_error(prefix + "unknown key '" + item.key() + "'");
    }
  }
}

// `parse` of the JSON file at `path`; any error is prefixed by the path.
template <class Parse>
auto parse_file(const std::string& path, Parse&& parse) {
  try {
    return parse(json::parse(util::read_text(path)));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

// "pretrainings", plus a lone "pretrain" under that name.
std::map<std::string, Pretraining> parse_pretrainings(const json& cfg) {
  json sections = cfg.value("pretrainings", json::object());
  if (cfg.contains("pretrain")) sections["pretrain"] = cfg["pretrain"];
  std::map<std::string, Pretraining> out;
  for (const auto& [name, section] : sections.items()) {
    Pretraining p;
    p.own_seed = section.contains("seed");
    if (section.is_object() && section.value("method", std::string()) == "supervised") {
      json keys = section;
      keys.erase("method");
      keys.erase("pretraining");
      p.supervised.emplace();
      p.supervised->init = "random";
      train::from_json(keys, *p.supervised);
      p.from = section.value("pretraining", std::string());
      if (section.contains("image_size")) p.image_size = p.supervised->image_size;
    } else {
      train::from_json(section, p.options);
    }
    out[name] = p;
  }
  for (const auto& [name, p] : out) {
    if (p.from.empty()) continue;
    const auto it = out.find(p.from);
    if (it == out.end())
      refuse("pretraining '" + name + "' starts from '" + p.from + "', which is not configured");
    if (it->second.supervised)
      refuse("pretraining '" + name + "' starts from '" + p.from + "', itself supervised");
  }
  return out;
}

void check_folder_name(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "cv" || name == "splits" ||
      name == "pretrain") {
    refuse("arm name '" + name + "' is not usable as a folder name");
  }
}

// An arm: the "classifier" section, then the arm's own keys over it; its pretraining is the one it
// names, or the only one configured.
Arm parse_arm(const json& cfg, const json& a,
              const std::map<std::string, Pretraining>& pretrainings) {
  Arm arm;
  arm.name = a.at("name").get<std::string>();
  check_folder_name(arm.name);
  arm.classifier.init = "simclr";
  train::from_json(train::config_section(cfg, "classifier"), arm.classifier);
  json overrides = a;
  overrides.erase("name");
  overrides.erase("pretraining");
  train::from_json(overrides, arm.classifier);
  // The cached side is the study's unless the arm (or the classifier section) sets its own: fine
  // pixels need a larger cache than the study's other arms.
  if (a.contains("image_size") || train::config_section(cfg, "classifier").contains("image_size")) {
    arm.image_size = arm.classifier.image_size;
  }
  if (arm.classifier.init != "simclr") return arm;
  std::string name = a.value("pretraining", std::string());
  if (name.empty() && pretrainings.size() == 1) name = pretrainings.begin()->first;
  if (!pretrainings.count(name)) {
    refuse("arm '" + arm.name + "' needs a pretraining" +
           (name.empty() ? std::string(" (name one with \"pretraining\")")
                         : " '" + name + "', which is not configured"));
  }
  arm.pretraining = name;
  return arm;
}

std::vector<std::pair<std::string, std::string>> parse_compare(
    const json& cfg, const std::vector<std::string>& arms) {
  std::vector<std::pair<std::string, std::string>> pairs;
  const json c = cfg.value("compare", json::array());
  if (!c.is_array()) refuse("'compare' must be a list of [arm, other arm] pairs");
  for (const auto& p : c) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
      refuse("each 'compare' entry must be [arm, other arm], not " + p.dump());
    }
    const std::string a = p[0], b = p[1];
    for (const std::string& name : {a, b}) {
      if (std::find(arms.begin(), arms.end(), name) == arms.end()) {
        refuse("'compare' names arm '" + name + "', which is not in 'arms'");
      }
    }
    if (a == b) refuse("'compare' pairs arm '" + a + "' with itself");
    pairs.emplace_back(a, b);
  }
  return pairs;
}

void parse_arms(const json& cfg, StudyConfig& c) {
  const json arms = cfg.at("arms");
  if (!arms.is_array() || arms.empty()) refuse("'arms' must be a non-empty array");
  for (const auto& a : arms) {
    Arm arm = parse_arm(cfg, a, c.pretrainings);
    for (const Arm& other : c.arms) {
      if (other.name == arm.name) refuse("arm '" + arm.name + "' appears twice");
    }
    c.arms.push_back(std::move(arm));
  }
  const std::vector<std::string> names = c.arm_names();
  if (std::find(names.begin(), names.end(), c.baseline_arm) == names.end()) {
    refuse("no arm named '" + c.baseline_arm + "' (baseline_arm)");
  }
  c.compare = parse_compare(cfg, names);
}

}  // namespace

const Arm& StudyConfig::arm(const std::string& name) const {
  for (const Arm& a : arms) {
    if (a.name == name) return a;
  }
  throw std::runtime_error("study config: no arm '" + name + "'");
}

std::vector<std::string> StudyConfig::arm_names() const {
  std::vector<std::string> names;
  for (const Arm& a : arms) names.push_back(a.name);
  return names;
}

std::vector<std::string> StudyConfig::used_pretrainings() const {
  std::set<std::string> used;
  for (const Arm& a : arms) {
    if (!a.pretraining.empty()) used.insert(a.pretraining);
  }
  for (const std::string& name : std::set<std::string>(used)) {
    const auto it = pretrainings.find(name);
    if (it != pretrainings.end() && !it->second.from.empty()) used.insert(it->second.from);
  }
  return {used.begin(), used.end()};
}

namespace {

// Every arm's and supervised pretraining's classifier options, on the data each will read, checked
// now rather than when its turn comes hours later.
void check_recipes(const StudyConfig& c) {
  for (const Arm& a : c.arms) {
    train::ClassifierOptions co = a.classifier;
    co.data = c.data;
    try {
      train::check_classifier_options(co);
    } catch (const std::exception& e) {
      refuse("arm '" + a.name + "': " + e.what());
    }
  }
  for (const auto& [name, p] : c.pretrainings) {
    if (!p.supervised) continue;
    train::ClassifierOptions co = *p.supervised;
    if (c.pretrain_data) co.data = *c.pretrain_data;
    try {
      train::check_classifier_options(co);
    } catch (const std::exception& e) {
      refuse("pretraining '" + name + "': " + e.what());
    }
  }
}

}  // namespace

StudyConfig parse_study_config(const json& cfg) {
  refuse_unknown_keys(cfg, kKeys, "study config: ");
  StudyConfig c;
  c.source = cfg;
  if (!cfg.contains("out") || !cfg["out"].is_string())
    refuse("'out' (the study's folder) is missing");
  c.out = cfg["out"].get<std::string>();
  if (!cfg.contains("data")) refuse("'data' (the labelled images) is missing");
  if (!cfg.contains("arms")) refuse("'arms' is missing");
  c.description = cfg.value("description", c.description);
  train::data_options_from_json(cfg.at("data"), c.data);
  if (cfg.contains("pretrain_data")) {
    c.pretrain_data.emplace();
    train::data_options_from_json(cfg.at("pretrain_data"), *c.pretrain_data);
  }
  c.pool_groups = cfg.value("pool_groups", c.pool_groups);
  c.seed = cfg.value("seed", c.seed);
  c.seeds = cfg.value("seeds", std::vector<uint64_t>{c.seed});
  c.folds = cfg.value("folds", c.folds);
  c.val_fraction = cfg.value("val_fraction", c.val_fraction);
  c.fractions = cfg.value("fractions", c.fractions);
  c.image_size = cfg.value("image_size", c.image_size);
  c.cache_dir = cfg.value("cache_dir", c.cache_dir);
  c.bootstrap = cfg.value("bootstrap", c.bootstrap);
  c.baseline_arm = cfg.value("baseline_arm", c.baseline_arm);
  c.epochs_rule = cfg.value("epochs_rule", c.epochs_rule);
  epochs_for_fraction(1, 1.0, c.epochs_rule);  // refuses an unknown rule now rather than hours in
  c.final_models = cfg.value("final_models", c.final_models);
  c.precision = train::config_section(cfg, "classifier").value("precision", c.precision);
  c.pretrainings = parse_pretrainings(cfg);
  parse_arms(cfg, c);
  for (double f : c.fractions) {
    if (!(f > 0 && f <= 1)) refuse("label fraction " + std::to_string(f) + " not in (0, 1]");
  }
  if (!c.used_pretrainings().empty() && !c.pretrain_data)
    refuse("SimCLR arms need 'pretrain_data'");
  check_recipes(c);
  return c;
}

StudyConfig read_study_config(const std::string& path) {
  return parse_file(path, [](const json& j) { return parse_study_config(j); });
}

StudyConfig quick_study_config() { return parse_study_config(json::parse(kStudyQuickConfig)); }

train::PretrainOptions study_pretrain_options(const StudyConfig& c, const std::string& name) {
  const auto it = c.pretrainings.find(name);
  if (it == c.pretrainings.end())
    throw std::runtime_error("study config: no pretraining '" + name + "'");
  if (it->second.supervised) {
    throw std::runtime_error("study config: pretraining '" + name +
                             "' is supervised (study_supervised_options)");
  }
  train::PretrainOptions po = it->second.options;
  po.out = c.out + "/pretrain" + (name == "pretrain" ? std::string() : "-" + name);
  po.split = c.out + "/pretrain_pool.json";
  po.cache_dir = c.cache_dir;
  po.image_size = c.image_size;
  // A pretraining's own "seed" makes it a further draw of the same recipe; otherwise the study's.
  if (!it->second.own_seed) po.seed = c.seed;
  return po;
}

train::ClassifierOptions study_supervised_options(
    const StudyConfig& c, const std::string& name,
    const std::map<std::string, std::string>& backbones) {
  const Pretraining& p = c.pretrainings.at(name);
  if (!p.supervised)
    throw std::runtime_error("study config: pretraining '" + name + "' is not supervised");
  train::ClassifierOptions co = *p.supervised;
  co.data = *c.pretrain_data;
  co.out = c.out + "/pretrain-" + name;
  co.split = co.out + "/split.json";
  co.cache_dir = c.cache_dir;
  co.image_size = p.image_size > 0 ? p.image_size : c.image_size;
  co.test_fraction = 0;
  if (!p.own_seed) co.seed = c.seed;
  if (!p.from.empty()) {
    co.init = "simclr";
    co.backbone = backbones.at(p.from);
  }
  return co;
}

int epochs_for_fraction(int epochs, double fraction, const std::string& rule) {
  if (epochs <= 0) return epochs;
  if (rule == "same") return epochs;
  if (rule == "sqrt")
    return std::max(1, static_cast<int>(std::lround(epochs / std::sqrt(fraction))));
  throw std::runtime_error("epochs_rule must be 'same' or 'sqrt', not '" + rule + "'");
}

double study_training_views(const StudyConfig& c, size_t labelled, size_t pool) {
  const double k = c.folds;
  const double train_share = (k - 1) / k * (1 - c.val_fraction);
  const double runs_per_fraction = k * static_cast<double>(c.seeds.size());
  double views = 0;
  for (const Arm& arm : c.arms) {
    for (double f : c.fractions) {
      views += runs_per_fraction *
               epochs_for_fraction(arm.classifier.finetune_epochs, f, c.epochs_rule) * f *
               train_share * static_cast<double>(labelled);
    }
  }
  for (const std::string& name : c.used_pretrainings()) {
    const Pretraining& p = c.pretrainings.at(name);
    views += p.supervised ? (1 - c.val_fraction) *
                                (p.supervised->probe_epochs + p.supervised->finetune_epochs) *
                                static_cast<double>(pool)
                          : 2.0 * p.options.epochs * static_cast<double>(pool);
  }
  return views;
}

namespace {

const char* const kProtocolKeys[] = {"out",        "data",       "pretrain_data", "seed",
                                     "cache_dir",  "image_size", "split",         "pretrain",
                                     "classifier", "baseline",   "bootstrap",     "description"};

ProtocolConfig parse_protocol_config(const json& cfg, const std::string& path) {
  refuse_unknown_keys(cfg, kProtocolKeys, "");
  ProtocolConfig c;
  c.source = cfg;
  c.path = path;
  c.out = cfg.at("out").get<std::string>();
  c.description = cfg.value("description", c.description);
  train::data_options_from_json(cfg.at("data"), c.data);
  if (cfg.contains("pretrain_data")) {
    c.pretrain_data =
        c.data;  // its keys over the labelled data's (a plain string changes the path alone)
    train::data_options_from_json(cfg["pretrain_data"], *c.pretrain_data);
  }
  c.seed = cfg.value("seed", c.seed);
  c.cache_dir = cfg.value("cache_dir", c.cache_dir);
  c.image_size = cfg.value("image_size", c.image_size);
  c.bootstrap = cfg.value("bootstrap", c.bootstrap);
  const json split = train::config_section(cfg, "split");
  c.val_fraction = split.value("val_fraction", c.val_fraction);
  c.test_fraction = split.value("test_fraction", c.test_fraction);
  if (cfg.contains("pretrain") && !cfg["pretrain"].is_null()) {
    c.pretrain.emplace();
    train::from_json(cfg["pretrain"], *c.pretrain);
  }
  train::from_json(train::config_section(cfg, "classifier"), c.classifier);
  // The supervised baseline: true, or an object of classifier options that differ for it (e.g. no
  // frozen-backbone phase). Only beside a pretrained classifier.
  const json baseline = cfg.value("baseline", json(false));
  if (c.pretrain && (baseline.is_object() || (baseline.is_boolean() && baseline.get<bool>()))) {
    c.baseline = c.classifier;
    if (baseline.is_object()) train::from_json(baseline, *c.baseline);
  }
  return c;
}

}  // namespace

ProtocolConfig read_protocol_config(const std::string& path) {
  return parse_file(path, [&](const json& j) { return parse_protocol_config(j, path); });
}

}  // namespace wristssl::study
