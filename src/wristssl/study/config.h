#pragma once
// The study's configuration as types: parsed and validated once from JSON (configs/study_*.json),
// each default declared once here, unknown keys refused by name. Everything below the parser works
// on these structs.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/pretrain.h"

namespace wristssl::study {

/// One arm: a classifier recipe, the config's "classifier" section with the arm's own keys over it.
struct Arm {
  std::string name;         // also its folder name
  std::string pretraining;  // the pretraining its backbone comes from; empty when it starts from
                            // random weights
  train::ClassifierOptions classifier;
  int image_size = 0;  // the cached side of this arm's images; 0: the study's image_size
};

/// One pretraining recipe: a section of "pretrainings" (or the lone "pretrain", named "pretrain").
struct Pretraining {
  train::PretrainOptions
      options;  // as configured; where it writes and what it reads: study_pretrain_options
  bool own_seed = false;  // the section sets "seed": another draw of the same recipe
  // "method": "supervised" (labelled transfer): the fracture classifier trained on the pool's own
  // labels (and boxes), whose backbone the arms then start from; the section's other keys are
  // classifier options. `from` names the (self-supervised) pretraining it starts from ("": random
  // weights); image_size its own cached side (0: the study's).
  std::optional<train::ClassifierOptions> supervised;
  std::string from;
  int image_size = 0;
};

struct StudyConfig {
  nlohmann::json
      source;  // the config as written (recorded in OUT/study_config.json and study.json)
  std::string description;
  std::string out;            // the study's folder
  data::DatasetOptions data;  // the labelled images (cross-validated)
  std::optional<data::DatasetOptions>
      pretrain_data;            // the unlabelled pool (needed by pretrained arms)
  bool pool_groups = true;      // also drop pool images that share a group with a labelled one
  uint64_t seed = 1;            // pretraining draws and the final models' split
  std::vector<uint64_t> seeds;  // one cross-validation per seed; default: {seed}
  int folds = 5;
  double val_fraction = 0.15;
  std::vector<double> fractions = {0.1, 0.25, 1.0};  // shares of the training labels
  int image_size = 512;
  std::string cache_dir = ".wristssl-cache";
  int bootstrap = 2000;  // resamples of the grouped paired bootstrap
  std::map<std::string, Pretraining> pretrainings;
  std::vector<Arm> arms;
  std::string baseline_arm = "scratch";
  std::string epochs_rule =
      "sqrt";                // epochs at a label fraction: "sqrt" (x 1/sqrt(fraction)) or "same"
  bool final_models = true;  // each arm once more on every labelled image, as a bundle
  std::vector<std::pair<std::string, std::string>>
      compare;                     // further [arm, other] paired comparisons
  std::string precision = "auto";  // the classifier section's precision (tune-first decision)

  /// The arm called `name`; throws when there is none.
  const Arm& arm(const std::string& name) const;
  /// The arms' names in config order.
  std::vector<std::string> arm_names() const;
  /// The pretrainings some arm uses (a configured pretraining no arm uses is not run).
  std::vector<std::string> used_pretrainings() const;
};

/// Parses and validates a study config (see configs/study_fracatlas.json). Throws naming the
/// offending key or value: an unknown key, a missing "out", "data" or "arms", an arm name that
/// cannot be a folder or appears twice, no baseline arm, a label fraction outside (0, 1], a
/// "compare" entry that is not a pair of two different arms, an arm that needs a pretraining not
/// configured, or pretrained arms without "pretrain_data".
StudyConfig parse_study_config(const nlohmann::json& config);

/// parse_study_config of a JSON file; errors name the file.
StudyConfig read_study_config(const std::string& path);

/// The `--quick` preset, configs/study_quick.json compiled in: the same code on the bundled sample
/// (frontal views labelled, the other views as the pretraining pool), sized for about a minute on 2
/// cores; its out is runs/study-quick.
StudyConfig quick_study_config();

/// The options of the study's pretraining `name`: its section, written to OUT/pretrain-NAME
/// (OUT/pretrain for "pretrain"), on the study's pool split, cache and image size, with the study's
/// seed unless the section sets its own. The caller sets the pool's data options and the threads.
/// Throws for a name not configured.
train::PretrainOptions study_pretrain_options(const StudyConfig& config, const std::string& name);

/// A supervised pretraining's classifier options: the pool's labelled images (pretrain_data), its
/// folder OUT/pretrain-NAME with a split over the pool (split.json: training and validation images
/// of the pool, grouped; everything outside the pool kept out as "test"), started from the backbone
/// of the pretraining it names (`backbones`: pretraining name -> backbone.pt).
train::ClassifierOptions study_supervised_options(
    const StudyConfig& config, const std::string& name,
    const std::map<std::string, std::string>& backbones);

/// Fine-tuning epochs at label fraction `fraction` for `epochs` at 100%: "same" keeps them; "sqrt"
/// multiplies by 1/sqrt(fraction) (fewer images per epoch, so more epochs; rounded, at least 1).
int epochs_for_fraction(int epochs, double fraction, const std::string& rule);

/// What a study trains on, in augmented views: each pretraining an arm uses, 2 views x epochs x
/// `pool` images; and each cross-validation run, its fine-tuning epochs (after the epochs rule) x
/// its share of the `labelled` images (the training folds, less validation, at its label fraction).
/// The study measures this machine's compute configuration first (`wristssl tune`) when this passes
/// should_tune_first's threshold.
double study_training_views(const StudyConfig& config, size_t labelled, size_t pool);

/// `wristssl run --config FILE`: the paper's protocol on one split (configs/demo.json,
/// grazpedwri_paper.json).
struct ProtocolConfig {
  nlohmann::json source;  // the config as written (recorded in OUT/run_config.json)
  std::string path;       // the file it came from (recorded in summary.json)
  std::string description;
  std::string out;
  data::DatasetOptions data;
  std::optional<data::DatasetOptions>
      pretrain_data;  // pretraining images when not the labelled ones
  uint64_t seed = 0;
  std::string cache_dir = ".wristssl-cache";
  int image_size = 512;
  double val_fraction = 0.15, test_fraction = 0.15;  // the "split" section
  int bootstrap = 2000;
  std::optional<train::PretrainOptions>
      pretrain;                         // absent: the classifier starts from random weights
  train::ClassifierOptions classifier;  // the "classifier" section
  std::optional<train::ClassifierOptions>
      baseline;  // "baseline": true, or the options that differ for it
};

/// Parses and validates a run config; errors name the file and the offending key.
ProtocolConfig read_protocol_config(const std::string& path);

}  // namespace wristssl::study
