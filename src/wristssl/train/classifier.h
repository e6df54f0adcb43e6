#pragma once
// The fracture classifier on a SimCLR backbone, as the paper trains it: a head on the frozen backbone
// (linear probe), then the whole model fine-tuned; best-by-validation weights kept, the operating
// threshold chosen on validation and frozen for the test set.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"

namespace wristssl::train {

struct ClassifierOptions {
  data::DatasetOptions data;
  std::string out;                     // run folder
  std::string split;                   // split file; empty: <out>/split.json, made if absent
  double val_fraction = 0.15;
  double test_fraction = 0.15;
  std::string cache_dir = ".wristssl-cache";
  size_t limit = 0;                    // IDX data: images per split
  int image_size = 512;
  int crop_size = 0;                   // 0 = image_size
  // "resized": the fine-tuning crop is a random share of the whole image resized to crop_size, and
  // the model sees whole images resized to crop_size. "native" (fine pixels): crops of about
  // crop_size source pixels cut at the cached scale (image_size), holding a fracture box of a
  // fractured image, or falling on bone; the model then scores the whole cached image, fully
  // convolutionally, at the same pixel scale.
  std::string crops = "resized";
  std::string pooling = "mean";  // "mean" or "lse" (see models::Pooling)
  double pool_sharpness = 2.0;   // r of lse pooling
  // Weight of the per-location box loss (0: off): the margin map supervised by the training
  // images' boxes (binary cross-entropy; positive on cells a box touches, negative on every cell of
  // a negative image and outside the boxes of a fractured one). Needs native crops and --boxes.
  double box_loss = 0;
  std::string backbone;                // SimCLR backbone.pt; empty with init "random"
  std::string init = "simclr";         // "simclr" (needs backbone) or "random" (supervised baseline)
  int probe_epochs = 40;               // head only, backbone frozen (the paper: 40)
  int finetune_epochs = 10;            // then the whole model (the paper: to epoch 50)
  int batch_size = 32;
  double lr_probe = 0.01;
  double lr_finetune = 0.001;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool probe_augment = false;          // false: the probe trains on cached features (fast, exact)
  // "sgd": the head trained by SGD for probe_epochs; "logistic": an L2-regularised logistic regression on
  // standardised frozen features, fitted to convergence (L-BFGS) as one probe epoch, its penalty chosen on
  // validation from a grid (probe_l2 > 0 fixes it), then folded into the linear head.
  std::string probe_method = "sgd";
  double probe_l2 = 0;
  // LP-FT (Kumar et al. 2022): re-estimate the backbone's batch-norm statistics on the labelled training
  // images (no augmentation) before the probe, so its features are those of this data.
  bool bn_reestimate = false;
  int warmup_epochs = 0;               // linear warm-up of the fine-tuning learning rate
  double backbone_lr_scale = 1.0;      // fine-tuning: the backbone's learning rate = lr_finetune x this
  std::string augment = "classifier";  // augmentation preset of the fine-tuning phase
  std::string imbalance = "weighted";  // "weighted" loss, "balanced" sampling, or "none"
  double label_fraction = 1.0;         // grouped, stratified share of the training labels used
  std::string threshold_rule = "youden";  // "youden" or "sensitivity:0.95"
  double refer_fraction = 0.10;        // share of validation images nearest the threshold that set the refer band
  // Distributed (see dist/env.h): fine-tuning is data-parallel (batch_size per rank), embeddings and
  // validation scores are computed in shards and gathered; rank 0 alone writes.
  bool sync_bn = false;
  std::string dist_backend = "auto";
  int dist_timeout = 300;
  std::string precision = "auto";
  bool channels_last = true;
  uint64_t seed = 0;
  int threads = 0;
  int workers = 2;
  int bootstrap = 2000;                // resamples for the intervals
};

nlohmann::json to_json(const ClassifierOptions& o);
void from_json(const nlohmann::json& j, ClassifierOptions& o);

struct ClassifierResult {
  int best_epoch = 0;
  double best_val_auroc = 0;
  double threshold = 0.5;
  std::string model_path;              // <out>/model.pt (best weights)
  std::string bundle_path;             // <out>/model.wristssl (binary classifiers)
  bool interrupted = false;
};

/// Throws std::runtime_error naming the option when `o` cannot run (an unknown init, probe, pooling
/// or crop mode; a box loss without native crops, lse pooling and --boxes; ...); the run folder and
/// the data's existence are checked when the run starts.
void check_classifier_options(const ClassifierOptions& o);

/// The fracture boxes the trainer may use: those of the fractured images among `train` (indices
/// into ds.records), nothing of any other image, so a validation or test image's box never reaches
/// training.
std::shared_ptr<const std::map<int, std::vector<data::Box>>> training_boxes(
    const data::Dataset& ds, const std::vector<int>& train);

/// Trains (or resumes) the classifier; writes split.json (if made), config.json, history.csv/jsonl,
/// checkpoint.pt, model.pt (best by validation AUROC), threshold.json (with the decision rule fitted on
/// validation: calibration and refer band) and, for fracture / no fracture, the bundle model.wristssl.
ClassifierResult run_classifier(const ClassifierOptions& options);

}  // namespace wristssl::train
