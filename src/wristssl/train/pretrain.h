#pragma once
// SimCLR pretraining: the paper's self-supervised stage, crash-safe and resumable.

#include <nlohmann/json.hpp>
#include <string>

#include "wristssl/data/dataset.h"

namespace wristssl::train {

struct PretrainOptions {
  data::DatasetOptions data;
  std::string out;                    // run folder
  std::string split;                  // optional split file: val/test images are kept out of pretraining
  std::string cache_dir = ".wristssl-cache";
  size_t limit = 0;                   // IDX (Fashion-MNIST): images per split, 0 = all
  // The paper's defaults.
  int image_size = 512;               // cached resolution (the paper resizes to 512x512)
  int crop_size = 0;                  // view size fed to the network; 0 = image_size
  int epochs = 50;
  int batch_size = 32;
  double lr = 0.01;                   // peak learning rate (the paper: 0.001-0.01)
  double lr_min = 0.0;
  int warmup_epochs = 2;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  std::string optimizer = "sgd";      // "sgd" or "lars"
  double temperature = 0.5;
  // "simclr" (NT-Xent), "dcl" (decoupled contrastive loss, Yeh et al. 2022) or "moco" (MoCo v2: a momentum
  // key encoder and a queue of negatives, He et al. 2020; MoCo v2 uses temperature 0.2).
  std::string method = "simclr";
  int moco_queue = 1024;              // MoCo: negatives kept in the queue
  double moco_momentum = 0.99;        // MoCo: key encoder <- m key + (1 - m) query after every step
  int moco_key_splits = 2;            // MoCo: shuffled chunks with their own batch-norm statistics for the keys
  std::string head = "mlp";           // "mlp" (SimCLR, 512-512-128) or "linear" (the paper)
  std::string augment = "xray";       // augmentation preset: xray, xray-clean (no blur, noise), paper
  std::string precision = "auto";     // auto, fp32, bf16
  bool channels_last = true;
  std::string init;                   // optional torchvision ResNet-18 state dict (3-channel conv1 summed)
  uint64_t seed = 0;
  int threads = 0;                    // LibTorch threads, 0 = all cores
  int workers = 2;                    // loader threads
  int prefetch = 4;
  int knn_k = 20;                     // kNN monitor (labelled data only)
  int knn_max = 1000;                 // images embedded for the monitor (memory + queries)
  int knn_every = -1;                 // epochs between monitors; 0 = never; -1 = auto: after the first epoch,
                                      // then as often as keeps the monitor near kExtrasShare of training time
  int64_t max_steps = 0;              // stop after this many steps (tests, benchmarks); 0 = no limit
  // Distributed (several processes: torchrun, SLURM or `wristssl launch`; see dist/env.h). batch_size stays
  // the per-rank batch.
  bool sync_bn = false;               // batch norm over the global batch instead of each rank's own
  std::string dist_backend = "auto";  // auto, gloo, nccl
  int dist_timeout = 300;             // seconds before a dead or hung rank ends the others
};

nlohmann::json to_json(const PretrainOptions& o);
/// Reads options from JSON (a config file); unknown keys are an error naming them.
void from_json(const nlohmann::json& j, PretrainOptions& o);

struct PretrainResult {
  int64_t epochs_done = 0;
  int64_t steps = 0;
  double first_loss = 0;              // loss of the first step of the run (not of a resumed part)
  double last_epoch_loss = 0;
  bool interrupted = false;
  std::string backbone_path;          // <out>/backbone.pt (after the last epoch)
  std::string fingerprint;            // weights_fingerprint of the final backbone
};

/// Runs (or resumes: rerunning the same command continues from <out>/checkpoint.pt) SimCLR pretraining.
/// Writes config.json, steps.csv, metrics.csv, metrics.jsonl, checkpoint.pt and finally backbone.pt.
PretrainResult run_pretrain(const PretrainOptions& options);

}  // namespace wristssl::train
