#include "wristssl/train/pretrain.h"

#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "wristssl/data/loader.h"
#include "wristssl/data/source.h"
#include "wristssl/data/split.h"
#include "wristssl/distributed/group.h"
#include "wristssl/losses/nt_xent.h"
#include "wristssl/models/moco.h"
#include "wristssl/models/simclr.h"
#include "wristssl/train/batch_inference.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/train/knn_monitor.h"
#include "wristssl/train/options_json.h"
#include "wristssl/train/run_identity.h"
#include "wristssl/train/run_log.h"
#include "wristssl/train/run_start.h"
#include "wristssl/train/schedule.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/progress.h"
#include "wristssl/util/stop_signal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {
namespace {

// Options that change the result: a checkpoint made with other values is not resumed.
const char* const kRunKeys[] = {"data",         "split",     "limit",        "image_size", "crop_size",
                                "epochs",       "batch_size", "lr",          "lr_min",     "warmup_epochs",
                                "momentum",     "weight_decay", "optimizer", "temperature", "head",
                                "augment",      "precision", "channels_last", "init",      "seed",
                                "sync_bn",      "world_size", "method",    "moco_queue", "moco_momentum",
                                "moco_key_splits"};

// The one list of PretrainOptions's fields ("data" is nested and handled apart).
const auto kVisitPretrain = [](auto& o, auto&& f) {
  f("out", o.out);
  f("split", o.split);
  f("cache_dir", o.cache_dir);
  f("limit", o.limit);
  f("image_size", o.image_size);
  f("crop_size", o.crop_size);
  f("epochs", o.epochs);
  f("batch_size", o.batch_size);
  f("lr", o.lr);
  f("lr_min", o.lr_min);
  f("warmup_epochs", o.warmup_epochs);
  f("momentum", o.momentum);
  f("weight_decay", o.weight_decay);
  f("optimizer", o.optimizer);
  f("temperature", o.temperature);
  f("method", o.method);
  f("moco_queue", o.moco_queue);
  f("moco_momentum", o.moco_momentum);
  f("moco_key_splits", o.moco_key_splits);
  f("head", o.head);
  f("augment", o.augment);
  f("precision", o.precision);
  f("channels_last", o.channels_last);
  f("init", o.init);
  f("seed", o.seed);
  f("threads", o.threads);
  f("workers", o.workers);
  f("prefetch", o.prefetch);
  f("knn_k", o.knn_k);
  f("knn_max", o.knn_max);
  f("knn_every", o.knn_every);
  f("max_steps", o.max_steps);
  f("sync_bn", o.sync_bn);
  f("dist_backend", o.dist_backend);
  f("dist_timeout", o.dist_timeout);
};

}  // namespace

json to_json(const PretrainOptions& o) {
  json j = options_to_json(o, kVisitPretrain);
  j["data"] = data_options_to_json(o.data);
  return j;
}

void from_json(const json& j, PretrainOptions& o) {
  options_from_json(run_options(j), o, kVisitPretrain, to_json(o), "pretrain");
  if (j.contains("data")) data_options_from_json(j.at("data"), o.data);
}

namespace {

// Checks the options and fills in what they leave to the run (the crop size).
PretrainOptions resolved_options(const PretrainOptions& opt) {
  PretrainOptions o = opt;
  if (o.out.empty()) throw std::runtime_error("pretrain needs --out RUN_FOLDER");
  if (o.crop_size <= 0) o.crop_size = o.image_size;
  if (o.epochs < 1 || o.batch_size < 2) throw std::runtime_error("pretrain needs epochs >= 1 and batch size >= 2");
  if (o.optimizer != "sgd" && o.optimizer != "lars") throw std::runtime_error("--optimizer must be sgd or lars");
  if (o.method != "simclr" && o.method != "dcl" && o.method != "moco") {
    throw std::runtime_error("--method must be simclr, dcl or moco, got '" + o.method + "'");
  }
  return o;
}

// Per-epoch extras sized to the epoch: the kNN monitor (auto interval) and the checkpoint, each
// kept near this share of the training time. The first epoch's monitor and every checkpoint are
// timed.
constexpr double kExtrasShare = 0.05;

// One pretraining run, in stages: prepare (data and the pretraining/monitor sets, tune-first,
// config.json, the model and its optimizer, the loader), restore (checkpoint, rank 0's weights
// everywhere), the epochs (steps, the kNN monitor, checkpoints; a stop saves mid-epoch), finish
// (backbone.pt and summary.json).
class PretrainTrainer {
 public:
  explicit PretrainTrainer(const PretrainOptions& options)
      : o_(resolved_options(options)),
        run_(start_run("pretrain", o_.out, o_.threads, o_.precision, o_.dist_backend,
                       o_.dist_timeout)) {
    o_.threads =
        run_.threads;  // this rank's share, as config.json records it and the cache reads with
  }

  PretrainResult run() {
    prepare_data();
    prepare_model();
    restore();
    model_->train();
    for (int64_t epoch = state_.epoch; epoch < o_.epochs; ++epoch) {
      if (!run_epoch(epoch)) return result_;
    }
    return finish();
  }

 private:
  // Data: the cache at image_size; val / test images of a given split stay out of pretraining.
  // Then, on an untuned machine, a long run measures its compute configuration first, and
  // config.json.
  void prepare_data() {
    loaded_ = data::load_pixels(
        o_.data, data::cache_options(o_.cache_dir, o_.image_size, o_.threads), o_.limit);
    const data::Dataset& ds = loaded_.dataset;
    labels_.resize(ds.records.size());
    for (size_t i = 0; i < ds.records.size(); ++i) labels_[i] = ds.records[i].label;
    if (!o_.split.empty()) {
      items_from_split();
    } else {
      for (size_t i = 0; i < ds.records.size(); ++i) train_items_.push_back(static_cast<int>(i));
      if (ds.labelled()) {
        const data::Split monitor = data::make_split(ds, {0.2, 0.0, o_.seed});
        knn_memory_ = monitor.indices(data::Part::kTrain);
        knn_query_ = monitor.indices(data::Part::kVal);
      }
    }
    if (!ds.labelled()) knn_memory_.clear();
    // A long run on an untuned machine measures its compute configuration first (about half a
    // minute), once per machine: every later command reads the result.
    if (run_.world == 1 &&
        should_tune_first(o_.threads, o_.precision,
                          2.0 * o_.epochs * static_cast<double>(train_items_.size()))) {
      std::fprintf(stderr,
                   "pretrain: a long run on an untuned machine: measuring the compute "
                   "configuration first\n");
      run_tune(TuneOptions());
      reset_compute(run_, "pretrain", o_.precision);
    }
    std::tie(mean_, stdev_) = data::pixel_stats(*loaded_.pixels);
    const json resolved = {
        {"device", run_.device.str()},      {"bf16", run_.compute.bf16},
        {"threads", run_.compute.threads},  {"normalization", {{"mean", mean_}, {"std", stdev_}}},
        {"images", ds.records.size()},      {"pretrain_images", train_items_.size()},
        {"unreadable", loaded_.unreadable}, {"torch_version", TORCH_VERSION}};
    config_ = record_run_config(run_, to_json(o_), resolved, kRunKeys, train_items_.size(), o_.out);
  }

  // The split may be of another dataset (e.g. the labelled evaluation subset, while pretraining
  // reads every image): images are matched by their canonical path. Val and test images stay out.
  void items_from_split() {
    const data::Dataset& ds = loaded_.dataset;
    const std::map<std::string, data::Part> parts = data::read_split_parts(o_.split);
    size_t excluded = 0;
    for (size_t i = 0; i < ds.records.size(); ++i) {
      const auto it = parts.find(data::canonical_path(ds.records[i].path));
      const data::Part part = it == parts.end() ? data::Part::kTrain : it->second;
      if (part == data::Part::kTrain) train_items_.push_back(static_cast<int>(i));
      if (it != parts.end() && part == data::Part::kTrain)
        knn_memory_.push_back(static_cast<int>(i));
      if (part == data::Part::kVal) knn_query_.push_back(static_cast<int>(i));
      excluded += part != data::Part::kTrain;
    }
    std::fprintf(stderr, "pretrain: %zu val/test images of %s kept out of pretraining\n", excluded,
                 o_.split.c_str());
  }

  // Model and optimizer (the initial weights come from the run's seed), and the loader of two views
  // per image.
  void prepare_model() {
    torch::manual_seed(o_.seed);
    sync_bn_.emplace(o_.sync_bn);  // for the whole run: the guard lives as long as the trainer
    model_ = models::SimCLR(models::ProjectionHeadOptions().kind(o_.head), 1);
    if (!o_.init.empty()) {
      const int n = models::load_torchvision_weights(*model_->backbone, o_.init);
      std::fprintf(stderr, "pretrain: %d tensors initialised from %s\n", n, o_.init.c_str());
    }
    model_->to(run_.device);
    // MoCo: the model above is the query encoder; its momentum copy and the queue of negatives live
    // beside it in one module, which is what checkpoints save and resume.
    if (o_.method == "moco") {
      moco_ = models::MoCo(model_, models::MoCoOptions()
                                       .queue_size(o_.moco_queue)
                                       .momentum(o_.moco_momentum)
                                       .key_splits(o_.moco_key_splits));
    }
    if (o_.channels_last) util::to_channels_last(trained());
    optimizer_ = std::make_unique<torch::optim::SGD>(
        model_->parameters(), torch::optim::SGDOptions(o_.lr)
                                  .momentum(o_.momentum)
                                  .weight_decay(o_.optimizer == "lars" ? 0.0 : o_.weight_decay));
    data::LoaderOptions lo;
    lo.batch_size = o_.batch_size;
    lo.views = 2;
    lo.workers = o_.workers;
    lo.prefetch = o_.prefetch;
    lo.seed = o_.seed;
    lo.rank = distributed::rank();
    lo.world = run_.world;
    lo.augment = data::AugmentOptions::preset(o_.augment, o_.crop_size);
    lo.mean = mean_;
    lo.std = stdev_;
    loader_ = std::make_unique<data::BatchLoader>(*loaded_.pixels, train_items_, labels_, lo);
    steps_per_epoch_ = loader_->batches_per_epoch();
    schedule_ = {o_.lr, o_.lr_min, o_.warmup_epochs * steps_per_epoch_,
                 o_.epochs * steps_per_epoch_};
  }

  // What checkpoints save and resume: the model, or MoCo's query and key encoders and queue.
  torch::nn::Module& trained() { return moco_ ? static_cast<torch::nn::Module&>(*moco_) : *model_; }

  void restore() {
    ckpt_ = o_.out + "/checkpoint.pt";
    state_.kind = moco_ ? "moco" : "simclr";
    state_.config_json = config_.dump();
    if (fs::exists(ckpt_)) {
      state_ = load_checkpoint(ckpt_, trained(), optimizer_.get(), state_.kind);
      check_same_run(json::parse(state_.config_json), config_, kRunKeys, ckpt_,
                     to_json(PretrainOptions{}));
      partial_ = RunningMeans::from_json(state_.extra_json);
      if (o_.channels_last) util::to_channels_last(trained());
      std::fprintf(stderr, "pretrain: resuming %s at epoch %lld, batch %lld (step %lld)\n",
                   ckpt_.c_str(), static_cast<long long>(state_.epoch + 1),
                   static_cast<long long>(state_.batch_in_epoch),
                   static_cast<long long>(state_.step));
    }
    // Every rank starts from rank 0's weights (fresh or resumed: the checkpoint is read by every
    // rank).
    distributed::broadcast_module(trained());
    if (run_.group) {
      std::fprintf(stderr, "pretrain: %d ranks x batch %d = global batch %d%s\n", run_.world,
                   o_.batch_size, run_.world * o_.batch_size,
                   o_.sync_bn ? ", batch norm synchronised" : ", batch norm per rank");
    }
    if (run_.main)
      log_.emplace(o_.out, state_.step, state_.epoch,
                   std::vector<std::string>{"step", "epoch", "loss", "lr"});
    result_.epochs_done = state_.epoch;
    result_.steps = state_.step;
  }

  // The contrastive loss of one batch of two views; `keys` gets MoCo's keys.
  torch::Tensor loss_of(const torch::Tensor& x, const torch::Tensor& z, int64_t n,
                        torch::Tensor& keys) {
    if (moco_) {
      // Symmetric MoCo: each view's query against the other view's key, the queue as negatives.
      {
        const util::AutocastGuard autocast(run_.compute.bf16, run_.device.type());
        keys = moco_->keys(x);
      }
      const torch::Tensor positives = torch::cat({keys.narrow(0, n, n), keys.narrow(0, 0, n)});
      return losses::info_nce_queue(z, positives, moco_->queue, o_.temperature);
    }
    // Distributed: this rank's pairs against the negatives of the global batch (embeddings gathered
    // with their gradients), gradients averaged over the ranks: the same step as one process with
    // the global batch.
    const bool dcl = o_.method == "dcl";
    return run_.group
               ? losses::nt_xent_global(z.narrow(0, 0, n), z.narrow(0, n, n), o_.temperature, dcl)
               : losses::nt_xent(z.narrow(0, 0, n), z.narrow(0, n, n), o_.temperature, dcl);
  }

  // One optimisation step; returns the global batch's loss.
  double step(const data::Batch& batch, double lr) {
    set_lr(*optimizer_, lr);
    torch::Tensor x = torch::cat({batch.views[0], batch.views[1]}, 0).to(run_.device);
    if (o_.channels_last) x = util::channels_last(x);
    torch::Tensor z;
    {
      const util::AutocastGuard autocast(run_.compute.bf16, run_.device.type());
      z = model_->forward(x);
    }
    const int64_t n = batch.views[0].size(0);
    torch::Tensor keys;
    const torch::Tensor loss = loss_of(x, z, n, keys);
    optimizer_->zero_grad();
    distributed::GradientReducer reducer(*model_);  // all-reduces buckets while backward runs
    loss.backward();
    reducer.finish();
    if (o_.optimizer == "lars") apply_lars(*optimizer_, o_.weight_decay);
    optimizer_->step();
    if (moco_) {
      moco_->momentum_update();
      // Every rank enqueues the keys of the global batch, so the queues stay identical.
      moco_->enqueue(run_.group ? distributed::all_gather_with_grad(keys) : keys);
    }
    ++state_.step;
    // The logged loss is the global batch's; a stop asked of any rank stops them all at the same
    // step.
    const std::vector<double> reduced =
        distributed::sum_over_ranks({loss.item<double>(), util::stop_requested() ? 1.0 : 0.0});
    if (reduced[1] > 0) util::request_stop(true);
    partial_.add("embedding_std", losses::embedding_std(z.detach().narrow(0, 0, n)));
    return reduced[0] / run_.world;
  }

  bool step_limit() const { return o_.max_steps > 0 && state_.step >= o_.max_steps; }

  // One epoch; false when the run stops (resumably) during or after it.
  bool run_epoch(int64_t epoch) {
    loader_->start_epoch(epoch, state_.batch_in_epoch);
    util::Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs),
                       steps_per_epoch_, "batches", run_.main ? stderr : nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0, steps = 0;
    distributed::reset_comm_stats();
    while (auto batch = loader_->next()) {
      const double lr = schedule_.at(state_.step);
      const double l = step(*batch, lr);
      if (!first_logged_) {
        result_.first_loss = l;
        first_logged_ = true;
      }
      partial_.add("loss", l);
      images += batch->views[0].size(0) * run_.world;
      ++steps;
      state_.batch_in_epoch = batch->index + 1;
      if (log_)
        log_->step({std::to_string(state_.step), std::to_string(epoch + 1), format_number(l),
                    format_number(lr)});
      char extra[64];
      std::snprintf(extra, sizeof(extra), "loss %.4f", partial_.mean("loss"));
      bar.update(static_cast<size_t>(state_.batch_in_epoch), extra);
      if ((util::stop_requested() || step_limit()) && state_.batch_in_epoch < steps_per_epoch_) {
        stop_mid_epoch(epoch);
        return false;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json metrics = epoch_metrics(epoch, images, steps, seconds);
    monitor(epoch, seconds, metrics);
    bar.finish(metrics.dump());
    return end_epoch(epoch, metrics);
  }

  // A stop (signal, --max-steps) inside an epoch: a checkpoint at this batch, resumed there.
  void stop_mid_epoch(int64_t epoch) {
    state_.epoch = epoch;
    state_.extra_json = partial_.to_json();
    if (run_.main) {
      log_->flush();
      save_checkpoint(ckpt_, trained(), optimizer_.get(), state_);
    }
    std::fprintf(
        stderr, "\npretrain: %s at step %lld; checkpoint saved; rerun the same command to resume\n",
        step_limit() ? "step limit reached" : "stopped", static_cast<long long>(state_.step));
    result_.steps = state_.step;
    result_.interrupted = true;
  }

  json epoch_metrics(int64_t epoch, int64_t images, int64_t steps, double seconds) const {
    json metrics = {{"epoch", epoch + 1},
                    {"loss", partial_.mean("loss")},
                    {"lr", schedule_.at(state_.step - 1)},
                    {"images_per_s", images / std::max(1e-9, seconds)},
                    {"embedding_std", partial_.mean("embedding_std")},
                    {"embedding_std_uniform", 1.0 / std::sqrt(128.0)},
                    {"seconds", seconds}};
    if (run_.group && steps > 0) {
      // Rank 0's time in collectives per step (the step's all-reduces include waiting for the slowest rank).
      const distributed::CommStats c = distributed::comm_stats();
      metrics["world_size"] = run_.world;
      metrics["comm_ms_per_step"] = {{"all_reduce", 1e3 * c.all_reduce_s / steps},
                                     {"all_gather", 1e3 * c.all_gather_s / steps}};
      metrics["comm_mb_per_step"] = {{"all_reduce", c.all_reduce_bytes / steps / 1e6},
                                     {"all_gather", c.all_gather_bytes / steps / 1e6}};
    }
    return metrics;
  }

  // The kNN monitor when due: every knn_every epochs, or (auto) after the first epoch, the last,
  // and in between once its last cost is at most kExtrasShare of the training time since.
  void monitor(int64_t epoch, double seconds, json& metrics) {
    train_seconds_since_knn_ += seconds;
    pacer_.trained(seconds);
    const bool last_epoch = epoch + 1 == o_.epochs;
    const bool knn_due =
        o_.knn_every > 0
            ? (epoch + 1) % o_.knn_every == 0
            : o_.knn_every < 0 && (!knn_done_ || last_epoch ||
                                   knn_seconds_ <= kExtrasShare * train_seconds_since_knn_);
    if (!run_.main || !knn_due || knn_memory_.empty() || knn_query_.empty()) return;
    const auto k0 = std::chrono::steady_clock::now();
    KnnSets sets = cap_knn_sets(knn_memory_, knn_query_, o_.knn_max);
    const InferenceInput in{o_.crop_size,      mean_,           stdev_, run_.device,
                            run_.compute.bf16, o_.channels_last};
    const KnnResult knn = knn_monitor(*model_->backbone, *loaded_.pixels, sets.memory, sets.query,
                                      labels_, o_.knn_k, in);
    metrics["knn_accuracy"] = knn.accuracy;
    if (!std::isnan(knn.auroc)) metrics["knn_auroc"] = knn.auroc;
    model_->train();
    knn_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - k0).count();
    metrics["knn_seconds"] = knn_seconds_;
    knn_done_ = true;
    train_seconds_since_knn_ = 0;
  }

  // The epoch's log row and checkpoint: as the pacer says (kExtrasShare of the training time),
  // after the last epoch, and on a stop (Ctrl-C, SIGTERM, --max-steps). False when the run stops
  // here.
  bool end_epoch(int64_t epoch, json& metrics) {
    state_.epoch = epoch + 1;
    state_.batch_in_epoch = 0;
    partial_ = RunningMeans();
    state_.extra_json = partial_.to_json();
    bool saved = false;
    auto save = [&] {
      pacer_.save([&] { save_checkpoint(ckpt_, trained(), optimizer_.get(), state_); });
      saved = true;
    };
    if (run_.main) {
      if (epoch + 1 == o_.epochs || util::stop_requested() || step_limit() || pacer_.due()) {
        save();
        metrics["checkpoint_seconds"] = pacer_.save_seconds();
      }
      log_->epoch(metrics);
    }
    // The others wait here while rank 0 monitors and saves; a stop asked of any rank stops them all, and one
    // asked of another rank only is saved here.
    if (distributed::any_rank(util::stop_requested())) util::request_stop(true);
    if (run_.main && !saved && util::stop_requested()) save();
    result_.last_epoch_loss = metrics["loss"].get<double>();
    result_.epochs_done = state_.epoch;
    result_.steps = state_.step;
    if (!util::stop_requested() && !step_limit()) return true;
    result_.interrupted = state_.epoch < o_.epochs;
    if (!result_.interrupted) return true;
    std::fprintf(stderr, "pretrain: stopped after epoch %lld; rerun the same command to resume\n",
                 static_cast<long long>(state_.epoch));
    return false;
  }

  // backbone.pt (the encoder without its projection head) and summary.json: rank 0's work.
  PretrainResult finish() {
    json backbone_config = config_;
    backbone_config["kind"] = "simclr-backbone";
    result_.backbone_path = o_.out + "/backbone.pt";
    result_.fingerprint = weights_fingerprint(*model_->backbone);
    if (!run_.main) return result_;
    save_weights(result_.backbone_path, *model_->backbone, "backbone", backbone_config.dump());
    util::atomic_write(o_.out + "/summary.json",
                       json{{"epochs", state_.epoch},
                            {"steps", state_.step},
                            {"first_loss", result_.first_loss},
                            {"last_epoch_loss", result_.last_epoch_loss},
                            {"backbone", result_.backbone_path},
                            {"backbone_sha256_of_weights", result_.fingerprint}}
                           .dump(2));
    std::fprintf(stderr, "pretrain: done, %lld epochs, %lld steps; backbone %s\n",
                 static_cast<long long>(state_.epoch), static_cast<long long>(state_.step),
                 result_.backbone_path.c_str());
    return result_;
  }

  PretrainOptions o_;
  RunStart run_;
  data::LoadedData loaded_;
  std::vector<int> labels_, train_items_, knn_memory_, knn_query_;
  float mean_ = 0.5f, stdev_ = 0.25f;
  json config_;
  std::optional<distributed::SyncBatchNorm> sync_bn_;
  models::SimCLR model_{nullptr};
  models::MoCo moco_{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer_;
  std::unique_ptr<data::BatchLoader> loader_;
  int64_t steps_per_epoch_ = 0;
  LrSchedule schedule_;
  std::string ckpt_;
  CheckpointState state_;
  RunningMeans partial_;
  std::optional<RunLog> log_;
  PretrainResult result_;
  bool first_logged_ = false;
  double train_seconds_since_knn_ = 0, knn_seconds_ = 0;
  CheckpointPacer pacer_{kExtrasShare};
  bool knn_done_ = false;
};

}  // namespace

PretrainResult run_pretrain(const PretrainOptions& options) {
  return PretrainTrainer(options).run();
}

}  // namespace wristssl::train
