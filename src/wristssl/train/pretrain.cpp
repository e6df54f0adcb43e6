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

#include "wristssl/data/loader.h"
#include "wristssl/data/source.h"
#include "wristssl/data/split.h"
#include "wristssl/distributed/group.h"
#include "wristssl/losses/nt_xent.h"
#include "wristssl/models/moco.h"
#include "wristssl/models/simclr.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/train/tune.h"
#include "wristssl/train/options_json.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/progress.h"
#include "wristssl/util/stop_signal.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/train/batch_inference.h"
#include "wristssl/train/knn_monitor.h"
#include "wristssl/train/run_identity.h"
#include "wristssl/train/run_log.h"
#include "wristssl/train/schedule.h"

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

PretrainResult run_pretrain(const PretrainOptions& opt) {
  PretrainOptions o = opt;
  if (o.out.empty()) throw std::runtime_error("pretrain needs --out RUN_FOLDER");
  if (o.crop_size <= 0) o.crop_size = o.image_size;
  if (o.epochs < 1 || o.batch_size < 2) throw std::runtime_error("pretrain needs epochs >= 1 and batch size >= 2");
  if (o.optimizer != "sgd" && o.optimizer != "lars") throw std::runtime_error("--optimizer must be sgd or lars");
  if (o.method != "simclr" && o.method != "dcl" && o.method != "moco") {
    throw std::runtime_error("--method must be simclr, dcl or moco, got '" + o.method + "'");
  }
  // Distributed: every rank runs this function on its share of each global batch; rank 0 alone writes.
  distributed::Group* group = distributed::init({o.dist_backend, o.dist_timeout});
  const bool main = distributed::is_main();
  const int world = distributed::world_size();
  o.threads = distributed::threads_per_rank(o.threads);
  if (main) fs::create_directories(o.out);
  util::Compute compute = util::setup_compute("pretrain", o.threads, o.precision);

  // Data: the cache at image_size; val / test images of a given split stay out of pretraining.
  data::LoadedData loaded = data::load_pixels(o.data, data::cache_options(o.cache_dir, o.image_size, o.threads), o.limit);
  const data::Dataset& ds = loaded.dataset;
  std::vector<int> labels(ds.records.size());
  for (size_t i = 0; i < ds.records.size(); ++i) labels[i] = ds.records[i].label;
  std::vector<int> train_items, knn_memory, knn_query;
  if (!o.split.empty()) {
    // The split may be of another dataset (e.g. the labelled evaluation subset, while pretraining reads
    // every image): images are matched by their canonical path. Val and test images stay out.
    const std::map<std::string, data::Part> parts = data::read_split_parts(o.split);
    size_t excluded = 0;
    for (size_t i = 0; i < ds.records.size(); ++i) {
      const auto it = parts.find(data::canonical_path(ds.records[i].path));
      const data::Part part = it == parts.end() ? data::Part::kTrain : it->second;
      if (part == data::Part::kTrain) train_items.push_back(static_cast<int>(i));
      if (it != parts.end() && part == data::Part::kTrain) knn_memory.push_back(static_cast<int>(i));
      if (part == data::Part::kVal) knn_query.push_back(static_cast<int>(i));
      excluded += part != data::Part::kTrain;
    }
    std::fprintf(stderr, "pretrain: %zu val/test images of %s kept out of pretraining\n", excluded, o.split.c_str());
  } else {
    for (size_t i = 0; i < ds.records.size(); ++i) train_items.push_back(static_cast<int>(i));
    if (ds.labelled()) {
      const data::Split monitor = data::make_split(ds, {0.2, 0.0, o.seed});
      knn_memory = monitor.indices(data::Part::kTrain);
      knn_query = monitor.indices(data::Part::kVal);
    }
  }
  if (!ds.labelled()) knn_memory.clear();
  // A long run on an untuned machine measures its compute configuration first (about half a minute), once
  // per machine: every later command reads the result.
  if (world == 1 && should_tune_first(o.threads, o.precision, 2.0 * o.epochs * static_cast<double>(train_items.size()))) {
    std::fprintf(stderr, "pretrain: a long run on an untuned machine: measuring the compute configuration first\n");
    run_tune(TuneOptions());
    compute = util::setup_compute("pretrain", o.threads, o.precision);
  }
  const int threads = compute.threads;
  const c10::Device device = distributed::device_for_rank(compute.device);
  const bool bf16 = compute.bf16;
  const auto [mean, stdev] = data::pixel_stats(*loaded.pixels);
  json config = to_json(o);
  config["world_size"] = world;
  config["resolved"] = {{"device", device.str()},
                        {"bf16", bf16},
                        {"threads", threads},
                        {"normalization", {{"mean", mean}, {"std", stdev}}},
                        {"images", ds.records.size()},
                        {"pretrain_images", train_items.size()},
                        {"unreadable", loaded.unreadable},
                        {"torch_version", TORCH_VERSION}};
  require_same_run(config, kRunKeys, train_items.size());
  if (main) util::atomic_write(o.out + "/config.json", config.dump(2));

  // Model and optimizer; the initial weights come from the run's seed.
  torch::manual_seed(o.seed);
  const distributed::SyncBatchNorm sync_bn(o.sync_bn);
  models::SimCLR model(models::ProjectionHeadOptions().kind(o.head), 1);
  if (!o.init.empty()) {
    const int n = models::load_torchvision_weights(*model->backbone, o.init);
    std::fprintf(stderr, "pretrain: %d tensors initialised from %s\n", n, o.init.c_str());
  }
  model->to(device);
  // MoCo: the model above is the query encoder; its momentum copy and the queue of negatives live beside it
  // in one module, which is what checkpoints save and resume.
  models::MoCo moco{nullptr};
  if (o.method == "moco") {
    moco = models::MoCo(model, models::MoCoOptions()
                                   .queue_size(o.moco_queue)
                                   .momentum(o.moco_momentum)
                                   .key_splits(o.moco_key_splits));
  }
  torch::nn::Module& trained = moco ? static_cast<torch::nn::Module&>(*moco) : *model;
  if (o.channels_last) util::to_channels_last(trained);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(
                                                       o.optimizer == "lars" ? 0.0 : o.weight_decay));
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.views = 2;
  lo.workers = o.workers;
  lo.prefetch = o.prefetch;
  lo.seed = o.seed;
  lo.rank = distributed::rank();
  lo.world = world;
  lo.augment = data::AugmentOptions::preset(o.augment, o.crop_size);
  lo.mean = mean;
  lo.std = stdev;
  data::BatchLoader loader(*loaded.pixels, train_items, labels, lo);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const LrSchedule schedule{o.lr, o.lr_min, o.warmup_epochs * steps_per_epoch, o.epochs * steps_per_epoch};

  // Resume.
  const std::string ckpt = o.out + "/checkpoint.pt";
  CheckpointState state;
  state.kind = moco ? "moco" : "simclr";
  state.config_json = config.dump();
  RunningMeans partial;
  if (fs::exists(ckpt)) {
    state = load_checkpoint(ckpt, trained, &optimizer, state.kind);
    check_same_run(json::parse(state.config_json), config, kRunKeys, ckpt, to_json(PretrainOptions{}));
    partial = RunningMeans::from_json(state.extra_json);
    if (o.channels_last) util::to_channels_last(trained);
    std::fprintf(stderr, "pretrain: resuming %s at epoch %lld, batch %lld (step %lld)\n", ckpt.c_str(),
                 static_cast<long long>(state.epoch + 1), static_cast<long long>(state.batch_in_epoch),
                 static_cast<long long>(state.step));
  }
  // Every rank starts from rank 0's weights (fresh or resumed: the checkpoint is read by every rank).
  distributed::broadcast_module(trained);
  if (group) {
    std::fprintf(stderr, "pretrain: %d ranks x batch %d = global batch %d%s\n", world, o.batch_size,
                 world * o.batch_size, o.sync_bn ? ", batch norm synchronised" : ", batch norm per rank");
  }
  std::optional<RunLog> log;
  if (main) log.emplace(o.out, state.step, state.epoch, std::vector<std::string>{"step", "epoch", "loss", "lr"});
  PretrainResult result;
  result.epochs_done = state.epoch;
  result.steps = state.step;
  bool first_logged = false;
  // Per-epoch extras sized to the epoch: the kNN monitor (auto interval) and the checkpoint, each kept near
  // kExtrasShare of the training time. The first epoch's monitor and every checkpoint are timed.
  constexpr double kExtrasShare = 0.05;
  double train_seconds_since_knn = 0, knn_seconds = 0;
  CheckpointPacer pacer(kExtrasShare);
  bool knn_done = false;

  model->train();
  for (int64_t epoch = state.epoch; epoch < o.epochs; ++epoch) {
    loader.start_epoch(epoch, state.batch_in_epoch);
    util::Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), steps_per_epoch, "batches",
                       main ? stderr : nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0, steps = 0;
    distributed::reset_comm_stats();
    while (auto batch = loader.next()) {
      const double lr = schedule.at(state.step);
      set_lr(optimizer, lr);
      torch::Tensor x = torch::cat({batch->views[0], batch->views[1]}, 0).to(device);
      if (o.channels_last) x = util::channels_last(x);
      torch::Tensor z;
      {
        const util::AutocastGuard autocast(bf16, device.type());
        z = model->forward(x);
      }
      const int64_t n = batch->views[0].size(0);
      torch::Tensor loss, keys;
      if (moco) {
        // Symmetric MoCo: each view's query against the other view's key, the queue as negatives.
        {
          const util::AutocastGuard autocast(bf16, device.type());
          keys = moco->keys(x);
        }
        const torch::Tensor positives = torch::cat({keys.narrow(0, n, n), keys.narrow(0, 0, n)});
        loss = losses::info_nce_queue(z, positives, moco->queue, o.temperature);
      } else {
        // Distributed: this rank's pairs against the negatives of the global batch (embeddings gathered with
        // their gradients), gradients averaged over the ranks: the same step as one process with the global batch.
        const bool dcl = o.method == "dcl";
        loss = group ? losses::nt_xent_global(z.narrow(0, 0, n), z.narrow(0, n, n), o.temperature, dcl)
                     : losses::nt_xent(z.narrow(0, 0, n), z.narrow(0, n, n), o.temperature, dcl);
      }
      optimizer.zero_grad();
      distributed::GradientReducer reducer(*model);  // all-reduces buckets while backward runs
      loss.backward();
      reducer.finish();
      if (o.optimizer == "lars") apply_lars(optimizer, o.weight_decay);
      optimizer.step();
      if (moco) {
        moco->momentum_update();
        // Every rank enqueues the keys of the global batch, so the queues stay identical.
        moco->enqueue(group ? distributed::all_gather_with_grad(keys) : keys);
      }
      ++state.step;
      // The logged loss is the global batch's; a stop asked of any rank stops them all at the same step.
      const std::vector<double> reduced = distributed::sum_over_ranks({loss.item<double>(), util::stop_requested() ? 1.0 : 0.0});
      const double l = reduced[0] / world;
      if (reduced[1] > 0) request_stop(true);
      if (!first_logged) {
        result.first_loss = l;
        first_logged = true;
      }
      partial.add("loss", l);
      partial.add("embedding_std", losses::embedding_std(z.detach().narrow(0, 0, n)));
      images += n * world;
      ++steps;
      state.batch_in_epoch = batch->index + 1;
      if (log) log->step({std::to_string(state.step), std::to_string(epoch + 1), format_number(l), format_number(lr)});
      char extra[64];
      std::snprintf(extra, sizeof(extra), "loss %.4f", partial.mean("loss"));
      bar.update(static_cast<size_t>(state.batch_in_epoch), extra);
      const bool step_limit = o.max_steps > 0 && state.step >= o.max_steps;
      if ((util::stop_requested() || step_limit) && state.batch_in_epoch < steps_per_epoch) {
        state.epoch = epoch;
        state.extra_json = partial.to_json();
        if (main) {
          log->flush();
          save_checkpoint(ckpt, trained, &optimizer, state);
        }
        std::fprintf(stderr, "\npretrain: %s at step %lld; checkpoint saved; rerun the same command to resume\n",
                     step_limit ? "step limit reached" : "stopped", static_cast<long long>(state.step));
        result.steps = state.step;
        result.interrupted = true;
        return result;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json metrics = {{"epoch", epoch + 1},
                    {"loss", partial.mean("loss")},
                    {"lr", schedule.at(state.step - 1)},
                    {"images_per_s", images / std::max(1e-9, seconds)},
                    {"embedding_std", partial.mean("embedding_std")},
                    {"embedding_std_uniform", 1.0 / std::sqrt(128.0)},
                    {"seconds", seconds}};
    if (group && steps > 0) {
      // Rank 0's time in collectives per step (the step's all-reduces include waiting for the slowest rank).
      const distributed::CommStats c = distributed::comm_stats();
      metrics["world_size"] = world;
      metrics["comm_ms_per_step"] = {{"all_reduce", 1e3 * c.all_reduce_s / steps},
                                     {"all_gather", 1e3 * c.all_gather_s / steps}};
      metrics["comm_mb_per_step"] = {{"all_reduce", c.all_reduce_bytes / steps / 1e6},
                                     {"all_gather", c.all_gather_bytes / steps / 1e6}};
    }
    train_seconds_since_knn += seconds;
    pacer.trained(seconds);
    const bool last_epoch = epoch + 1 == o.epochs;
    const bool knn_due = o.knn_every > 0 ? (epoch + 1) % o.knn_every == 0
                         : o.knn_every < 0 && (!knn_done || last_epoch ||
                                               knn_seconds <= kExtrasShare * train_seconds_since_knn);
    if (main && knn_due && !knn_memory.empty() && !knn_query.empty()) {
      const auto k0 = std::chrono::steady_clock::now();
      KnnSets sets = cap_knn_sets(knn_memory, knn_query, o.knn_max);
      const InferenceInput in{o.crop_size, mean, stdev, device, bf16, o.channels_last};
      const KnnResult knn = knn_monitor(*model->backbone, *loaded.pixels, sets.memory, sets.query, labels, o.knn_k, in);
      metrics["knn_accuracy"] = knn.accuracy;
      if (!std::isnan(knn.auroc)) metrics["knn_auroc"] = knn.auroc;
      model->train();
      knn_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - k0).count();
      metrics["knn_seconds"] = knn_seconds;
      knn_done = true;
      train_seconds_since_knn = 0;
    }
    bar.finish(metrics.dump());
    state.epoch = epoch + 1;
    state.batch_in_epoch = 0;
    partial = RunningMeans();
    state.extra_json = partial.to_json();
    // A checkpoint as the pacer says (kExtrasShare of the training time), after the last epoch, and on a stop
    // (Ctrl-C, SIGTERM, --max-steps).
    const bool step_limit = o.max_steps > 0 && state.step >= o.max_steps;
    bool saved = false;
    auto save = [&] {
      pacer.save([&] { save_checkpoint(ckpt, trained, &optimizer, state); });
      saved = true;
    };
    if (main) {
      if (last_epoch || util::stop_requested() || step_limit || pacer.due()) {
        save();
        metrics["checkpoint_seconds"] = pacer.save_seconds();
      }
      log->epoch(metrics);
    }
    // The others wait here while rank 0 monitors and saves; a stop asked of any rank stops them all, and one
    // asked of another rank only is saved here.
    if (distributed::any_rank(util::stop_requested())) request_stop(true);
    if (main && !saved && util::stop_requested()) save();
    result.last_epoch_loss = metrics["loss"].get<double>();
    result.epochs_done = state.epoch;
    result.steps = state.step;
    if (util::stop_requested() || (o.max_steps > 0 && state.step >= o.max_steps)) {
      result.interrupted = state.epoch < o.epochs;
      if (result.interrupted) {
        std::fprintf(stderr, "pretrain: stopped after epoch %lld; rerun the same command to resume\n",
                     static_cast<long long>(state.epoch));
        return result;
      }
    }
  }
  json backbone_config = config;
  backbone_config["kind"] = "simclr-backbone";
  result.backbone_path = o.out + "/backbone.pt";
  result.fingerprint = weights_fingerprint(*model->backbone);
  if (!main) return result;
  save_weights(result.backbone_path, *model->backbone, "backbone", backbone_config.dump());
  util::atomic_write(o.out + "/summary.json", json{{"epochs", state.epoch},
                                                   {"steps", state.step},
                                                   {"first_loss", result.first_loss},
                                                   {"last_epoch_loss", result.last_epoch_loss},
                                                   {"backbone", result.backbone_path},
                                                   {"backbone_sha256_of_weights", result.fingerprint}}
                                                  .dump(2));
  std::fprintf(stderr, "pretrain: done, %lld epochs, %lld steps; backbone %s\n", static_cast<long long>(state.epoch),
               static_cast<long long>(state.step), result.backbone_path.c_str());
  return result;
}

}  // namespace wristssl::train
