#include "wristssl/train/classifier.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>

#include "wristssl/data/loader.h"
#include "wristssl/data/source.h"
#include "wristssl/data/split.h"
#include "wristssl/distributed/group.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/batch_inference.h"
#include "wristssl/train/checkpoint.h"
#include "wristssl/train/options_json.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/train/run_identity.h"
#include "wristssl/train/run_log.h"
#include "wristssl/train/run_start.h"
#include "wristssl/train/schedule.h"
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

const char* const kRunKeys[] = {"data",
                                "split",
                                "val_fraction",
                                "test_fraction",
                                "limit",
                                "image_size",
                                "crop_size",
                                "backbone",
                                "init",
                                "probe_epochs",
                                "finetune_epochs",
                                "batch_size",
                                "lr_probe",
                                "lr_finetune",
                                "momentum",
                                "weight_decay",
                                "probe_augment",
                                "augment",
                                "imbalance",
                                "label_fraction",
                                "precision",
                                "channels_last",
                                "seed",
                                "sync_bn",
                                "world_size",
                                "probe_method",
                                "probe_l2",
                                "bn_reestimate",
                                "warmup_epochs",
                                "backbone_lr_scale",
                                "crops",
                                "pooling",
                                "pool_sharpness",
                                "box_loss"};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Everything a run needs after its options are resolved: data, split parts, normalisation.
struct Prepared {
  data::LoadedData loaded;
  data::Split split;
  std::vector<int> labels, train, val, test;
  float mean = 0.5f, stdev = 0.25f;
  json backbone_config;  // the SimCLR run's config (empty for random init)
};

std::vector<int> readable(const data::PixelSource& px, const std::vector<int>& idx) {
  std::vector<int> out;
  for (int i : idx) {
    if (px.ok(i)) out.push_back(i);
  }
  return out;
}

Prepared prepare(const ClassifierOptions& o, bool make_split_if_missing) {
  Prepared p;
  p.loaded = data::load_pixels(o.data, data::cache_options(o.cache_dir, o.image_size, o.threads), o.limit);
  const data::Dataset& ds = p.loaded.dataset;
  if (ds.class_names.size() < 2) throw std::runtime_error(o.data.data + ": the classifier needs labelled data");
  for (const auto& r : ds.records) p.labels.push_back(r.label);
  const std::string split_path = o.split.empty() ? o.out + "/split.json" : o.split;
  if (fs::exists(split_path)) {
    p.split = data::load_split(split_path, ds);
  } else {
    if (!make_split_if_missing) throw std::runtime_error("no split file " + split_path);
    p.split = data::make_split(ds, {o.val_fraction, o.test_fraction, o.seed});
    data::save_split(split_path, ds, p.split);
    std::fprintf(stderr, "classifier: split written to %s\n", split_path.c_str());
  }
  const data::PixelSource& px = *p.loaded.pixels;
  p.train = readable(px, p.split.indices(data::Part::kTrain));
  if (o.label_fraction < 1.0) p.train = data::subsample_groups(ds, p.train, o.label_fraction, o.seed);
  p.val = readable(px, p.split.indices(data::Part::kVal));
  p.test = readable(px, p.split.indices(data::Part::kTest));
  if (p.train.empty() || p.val.empty()) throw std::runtime_error("the split leaves no readable train or val images");
  if (o.init == "simclr") {
    if (o.backbone.empty()) throw std::runtime_error("init 'simclr' needs --backbone RUN/backbone.pt (or --init random)");
    const std::string cfg = fs::path(o.backbone).parent_path() / "config.json";
    if (fs::exists(cfg)) p.backbone_config = json::parse(util::read_text(cfg));
  }
  if (p.backbone_config.contains("resolved")) {
    // The normalisation the backbone learnt with.
    p.mean = p.backbone_config["resolved"]["normalization"]["mean"].get<float>();
    p.stdev = p.backbone_config["resolved"]["normalization"]["std"].get<float>();
  } else {
    std::tie(p.mean, p.stdev) = data::pixel_stats(px);
  }
  return p;
}

}  // namespace

std::shared_ptr<const std::map<int, std::vector<data::Box>>> training_boxes(
    const data::Dataset& ds, const std::vector<int>& train) {
  auto out = std::make_shared<std::map<int, std::vector<data::Box>>>();
  for (int i : train) {
    const data::Record& r = ds.records.at(static_cast<size_t>(i));
    if (r.label == 1 && r.boxes_known && !r.boxes.empty()) (*out)[i] = r.boxes;
  }
  return out;
}

namespace {

// Class-probability of the positive class (binary) and predicted labels.
struct Scores {
  std::vector<double> positive;  // softmax[:, 1]
  std::vector<int> predicted;
  double loss = 0;
};

Scores score_logits(const torch::Tensor& logits, const std::vector<int>& labels, const torch::Tensor& class_weights) {
  Scores s;
  const torch::Tensor lf = logits.to(torch::kFloat).cpu();
  const torch::Tensor target = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kLong);
  s.loss = torch::nn::functional::cross_entropy(lf, target, torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights))
               .item<double>();
  const torch::Tensor prob = lf.softmax(1).contiguous();
  const torch::Tensor pred = prob.argmax(1).contiguous();
  const auto p = prob.accessor<float, 2>();
  const auto c = pred.accessor<int64_t, 1>();
  for (int64_t i = 0; i < prob.size(0); ++i) {
    s.positive.push_back(prob.size(1) == 2 ? p[i][1] : kNaN);
    s.predicted.push_back(static_cast<int>(c[i]));
  }
  return s;
}

double accuracy_of(const Scores& s, const std::vector<int>& labels) {
  int64_t ok = 0;
  for (size_t i = 0; i < labels.size(); ++i) ok += s.predicted[i] == labels[i];
  return labels.empty() ? kNaN : static_cast<double>(ok) / labels.size();
}

double auroc_or_nan(const std::vector<int>& labels, const std::vector<double>& scores) {
  try {
    return metrics::auroc(labels, scores);
  } catch (const std::exception&) {
    return kNaN;  // one class only, or more than two classes
  }
}

std::vector<int> labels_of(const Prepared& p, const std::vector<int>& idx) {
  std::vector<int> out;
  for (int i : idx) out.push_back(p.labels[i]);
  return out;
}

torch::Tensor logits_of(models::ClassifierImpl& model, const data::PixelSource& px, const std::vector<int>& items,
                        const InferenceInput& in) {
  model.eval();
  return infer(px, items, in, [&](const torch::Tensor& x) { return model.forward(x); });
}

// Batch-norm statistics re-estimated on `items` (no augmentation): every BatchNorm2d's running mean and
// variance reset, then accumulated as a plain average over the batches (momentum off), as
// torch.optim.swa_utils.update_bn does. The network is left in eval mode.
void reestimate_batch_norm(models::ResNet18Impl& backbone, const data::PixelSource& px, const std::vector<int>& items,
                           InferenceInput in) {
  using Momentum = std::decay_t<decltype(std::declval<torch::nn::BatchNormOptions&>().momentum())>;  // c10 or std
  std::vector<std::pair<torch::nn::BatchNorm2dImpl*, Momentum>> saved;
  for (const auto& m : backbone.modules(/*include_self=*/false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      saved.emplace_back(bn, bn->options.momentum());
      bn->reset_running_stats();
      bn->options.momentum(Momentum());  // none: a plain average over the batches
    }
  }
  in.shard = false;  // every rank computes the same statistics
  backbone.train();
  infer(px, items, in, [&](const torch::Tensor& x) { return backbone.features(x).select(1, 0); });
  for (auto& [bn, momentum] : saved) bn->options.momentum(momentum);
  backbone.eval();
}

// The logistic probe: weighted cross-entropy + (l2 / 2) |W|^2 on standardised features, fitted by L-BFGS
// (float64) for each penalty of the grid; the one with the best validation AUROC (binary; else accuracy)
// is kept, the larger penalty on ties. The standardisation is folded into the linear head. Returns the
// penalty chosen and the training loss.
std::pair<double, double> fit_logistic_head(torch::nn::LinearImpl& head, const torch::Tensor& train_x,
                                            const torch::Tensor& train_y, const torch::Tensor& val_x,
                                            const std::vector<int>& val_y, const torch::Tensor& class_weights,
                                            double fixed_l2) {
  const torch::Tensor x = train_x.to(torch::kCPU, torch::kDouble);
  const torch::Tensor mu = x.mean(0), sd = x.std(0, /*unbiased=*/false).clamp_min(1e-6);
  const torch::Tensor z = (x - mu) / sd, zv = (val_x.to(torch::kCPU, torch::kDouble) - mu) / sd;
  const torch::Tensor y = train_y.to(torch::kCPU), w = class_weights.to(torch::kCPU, torch::kDouble);
  const int64_t classes = head.weight.size(0), dims = head.weight.size(1);
  const std::vector<double> grid = fixed_l2 > 0 ? std::vector<double>{fixed_l2}
                                                : std::vector<double>{1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 1e-4};
  double best_score = -1, best_l2 = grid[0], best_loss = 0;
  torch::Tensor best_w, best_b;
  for (double l2 : grid) {
    torch::Tensor W = torch::zeros({classes, dims}, torch::kDouble).requires_grad_();
    torch::Tensor b = torch::zeros({classes}, torch::kDouble).requires_grad_();
    torch::optim::LBFGS opt({W, b}, torch::optim::LBFGSOptions(1.0).max_iter(500).history_size(20).tolerance_grad(1e-9)
                                        .tolerance_change(1e-12).line_search_fn("strong_wolfe"));
    double ce = 0;
    auto closure = [&]() {
      opt.zero_grad();
      const torch::Tensor data_loss = torch::nn::functional::cross_entropy(
          z.mm(W.t()) + b, y, torch::nn::functional::CrossEntropyFuncOptions().weight(w));
      const torch::Tensor loss = data_loss + 0.5 * l2 * W.pow(2).sum();
      loss.backward();
      ce = data_loss.item<double>();
      return loss;
    };
    opt.step(closure);
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = (zv.mm(W.t()) + b).contiguous();
    double score;
    if (classes == 2) {
      const torch::Tensor margin = (logits.select(1, 1) - logits.select(1, 0)).contiguous();
      score = auroc_or_nan(val_y, std::vector<double>(margin.data_ptr<double>(), margin.data_ptr<double>() + margin.numel()));
    } else {
      const torch::Tensor pred = logits.argmax(1).contiguous();
      int64_t ok = 0;
      for (int64_t i = 0; i < pred.size(0); ++i) ok += pred[i].item<int64_t>() == val_y[i];
      score = static_cast<double>(ok) / std::max<int64_t>(1, pred.size(0));
    }
    if (std::isnan(score)) score = 0;
    if (!best_w.defined() || score > best_score) {
      best_score = score;
      best_l2 = l2;
      best_loss = ce;
      best_w = W.detach().clone();
      best_b = b.detach().clone();
    }
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor scaled = best_w / sd;  // W z = W (x - mu) / sd = (W / sd) x - (W / sd) mu
  head.weight.copy_(scaled.to(head.weight.dtype()));
  head.bias.copy_((best_b - scaled.mv(mu)).to(head.bias.dtype()));
  return {best_l2, best_loss};
}

// The one list of ClassifierOptions's fields ("data" is nested and handled apart).
const auto kVisitClassifier = [](auto& o, auto&& f) {
  f("out", o.out);
  f("split", o.split);
  f("val_fraction", o.val_fraction);
  f("test_fraction", o.test_fraction);
  f("cache_dir", o.cache_dir);
  f("limit", o.limit);
  f("image_size", o.image_size);
  f("crop_size", o.crop_size);
  f("crops", o.crops);
  f("pooling", o.pooling);
  f("pool_sharpness", o.pool_sharpness);
  f("box_loss", o.box_loss);
  f("backbone", o.backbone);
  f("init", o.init);
  f("probe_epochs", o.probe_epochs);
  f("finetune_epochs", o.finetune_epochs);
  f("batch_size", o.batch_size);
  f("lr_probe", o.lr_probe);
  f("lr_finetune", o.lr_finetune);
  f("momentum", o.momentum);
  f("weight_decay", o.weight_decay);
  f("probe_augment", o.probe_augment);
  f("probe_method", o.probe_method);
  f("probe_l2", o.probe_l2);
  f("bn_reestimate", o.bn_reestimate);
  f("warmup_epochs", o.warmup_epochs);
  f("backbone_lr_scale", o.backbone_lr_scale);
  f("augment", o.augment);
  f("imbalance", o.imbalance);
  f("label_fraction", o.label_fraction);
  f("threshold_rule", o.threshold_rule);
  f("refer_fraction", o.refer_fraction);
  f("precision", o.precision);
  f("channels_last", o.channels_last);
  f("seed", o.seed);
  f("threads", o.threads);
  f("workers", o.workers);
  f("bootstrap", o.bootstrap);
  f("sync_bn", o.sync_bn);
  f("dist_backend", o.dist_backend);
  f("dist_timeout", o.dist_timeout);
};

}  // namespace

json to_json(const ClassifierOptions& o) {
  json j = options_to_json(o, kVisitClassifier);
  j["data"] = data_options_to_json(o.data);
  return j;
}

void from_json(const json& j, ClassifierOptions& o) {
  options_from_json(run_options(j), o, kVisitClassifier, to_json(o), "classifier");
  if (j.contains("data")) data_options_from_json(j.at("data"), o.data);
}

void check_classifier_options(const ClassifierOptions& o) {
  if (o.init != "simclr" && o.init != "random")
    throw std::runtime_error("--init must be simclr or random");
  if (o.imbalance != "weighted" && o.imbalance != "balanced" && o.imbalance != "none") {
    throw std::runtime_error("--imbalance must be weighted, balanced or none");
  }
  if (o.probe_method != "sgd" && o.probe_method != "logistic") {
    throw std::runtime_error("--probe-method must be sgd or logistic");
  }
  if (o.backbone_lr_scale < 0) throw std::runtime_error("--backbone-lr-scale must be >= 0");
  if (o.crops != "resized" && o.crops != "native")
    throw std::runtime_error("--crops must be resized or native");
  models::Pooling::from_json(
      {{"kind", o.pooling}, {"sharpness", o.pool_sharpness}});  // throws naming it
  if (o.box_loss < 0) throw std::runtime_error("--box-loss must be >= 0");
  if (o.box_loss > 0 && (o.crops != "native" || o.data.boxes.empty())) {
    throw std::runtime_error("--box-loss needs --crops native and --boxes FOLDER");
  }
  if (o.box_loss > 0 && o.pooling != "lse") {
    throw std::runtime_error("--box-loss supervises the margin map of --pooling lse");
  }
}

namespace {

// Checks the options and fills in what they leave to the run (crop size, the logistic probe's one
// epoch).
ClassifierOptions resolved_options(const ClassifierOptions& opt) {
  ClassifierOptions o = opt;
  if (o.out.empty()) throw std::runtime_error("train needs --out RUN_FOLDER");
  check_classifier_options(o);
  if (o.crop_size <= 0) o.crop_size = o.image_size;
  if (o.probe_method == "logistic") {
    if (o.probe_augment) {
      throw std::runtime_error(
          "the logistic probe fits frozen features: it cannot take --probe-augment");
    }
    o.probe_epochs = std::min(o.probe_epochs, 1);  // fitted to convergence in one step
  }
  return o;
}

// One classifier run, in stages: prepare (data, class balance, config.json, model), restore
// (checkpoint, LP-FT's batch-norm statistics), the epochs (probe on cached features or batches,
// then fine-tuning; validation; best weights; checkpoints), finish (the best weights' threshold,
// calibration and refer band, and the bundle).
class ClassifierTrainer {
 public:
  explicit ClassifierTrainer(const ClassifierOptions& options)
      : o_(resolved_options(options)),
        rule_(metrics::parse_threshold_rule(o_.threshold_rule)),
        run_(start_run("classifier", o_.out, o_.threads, o_.precision, o_.dist_backend,
                       o_.dist_timeout)) {
    o_.threads =
        run_.threads;  // this rank's share, as config.json records it and the cache reads with
    p_ = prepare(o_, true);
    num_classes_ = static_cast<int64_t>(p_.loaded.dataset.class_names.size());
  }

  ClassifierResult run() {
    prepare_training();
    restore();
    for (int64_t epoch = state_.epoch; epoch < total_epochs(); ++epoch) {
      if (!run_epoch(epoch)) return result_;
    }
    return finish();
  }

 private:
  int total_epochs() const { return o_.probe_epochs + o_.finetune_epochs; }
  const data::PixelSource& pixels() const { return *p_.loaded.pixels; }

  void prepare_training() {
    weigh_classes();
    config_ = record_run_config(run_, to_json(o_), resolved_json(), kRunKeys, train_items_.size(),
                                o_.out);
    // The initial weights come from the run's seed; batch norm over the global batch when asked
    // (for the whole run: the guard lives as long as the trainer).
    torch::manual_seed(o_.seed);
    sync_bn_.emplace(o_.sync_bn);
    model_ = models::Classifier(num_classes_, pooling());
    if (o_.init == "simclr") load_weights(o_.backbone, *model_->backbone, "backbone");
    model_->to(run_.device);
    if (o_.channels_last) util::to_channels_last(*model_);
    val_labels_ = labels_of(p_, p_.val);
    // Native crops: the model scores whole cached images, fully convolutionally.
    const int scored_size = o_.crops == "native" ? o_.image_size : o_.crop_size;
    infer_in_ = {scored_size, p_.mean, p_.stdev, run_.device, run_.compute.bf16, o_.channels_last};
    infer_in_.shard = true;  // distributed: embeddings and validation scores in shards, gathered
    train_boxes_ = training_boxes(p_.loaded.dataset, train_items_);
    if (!o_.data.boxes.empty() && run_.main) {
      std::fprintf(stderr, "classifier: %zu of the training images carry fracture boxes\n",
                   train_boxes_->size());
    }
  }

  models::Pooling pooling() const { return {o_.pooling, o_.pool_sharpness}; }

  // Class weights from the training labels (the loss is weighted unless asked otherwise), and the
  // training items: each once, or every class oversampled to the size of the largest ("balanced").
  void weigh_classes() {
    std::vector<double> counts(num_classes_, 0);
    for (int i : p_.train) counts[p_.labels[i]] += 1;
    weights_.assign(num_classes_, 1.0f);
    if (o_.imbalance == "weighted") {
      for (int64_t c = 0; c < num_classes_; ++c) {
        weights_[c] =
            counts[c] > 0 ? static_cast<float>(p_.train.size() / (num_classes_ * counts[c])) : 0.0f;
      }
    }
    class_weights_ = torch::tensor(weights_);
    train_items_ = p_.train;
    if (o_.imbalance != "balanced") return;
    // Whole copies, then a seeded remainder.
    std::vector<std::vector<int>> by_class(num_classes_);
    for (int i : p_.train) by_class[p_.labels[i]].push_back(i);
    size_t largest = 0;
    for (const auto& v : by_class) largest = std::max(largest, v.size());
    train_items_.clear();
    std::mt19937_64 rng(o_.seed);
    for (auto& v : by_class) {
      if (v.empty()) continue;
      for (size_t k = 0; k < largest; ++k)
        train_items_.push_back(v[k < v.size() ? k : rng() % v.size()]);
    }
  }

  json resolved_json() const {
    return {{"device", run_.device.str()},
            {"bf16", run_.compute.bf16},
            {"threads", run_.compute.threads},
            {"normalization", {{"mean", p_.mean}, {"std", p_.stdev}}},
            {"class_names", p_.loaded.dataset.class_names},
            {"train_images", p_.train.size()},
            {"val_images", p_.val.size()},
            {"test_images", p_.test.size()},
            {"class_weights", weights_},
            {"torch_version", TORCH_VERSION}};
  }

  // Probe: the head alone. Fine-tuning: two groups, the backbone (lr x backbone_lr_scale) and the head.
  std::unique_ptr<torch::optim::SGD> make_optimizer(bool probe) {
    const auto options = torch::optim::SGDOptions(probe ? o_.lr_probe : o_.lr_finetune)
                             .momentum(o_.momentum)
                             .weight_decay(o_.weight_decay);
    if (probe) return std::make_unique<torch::optim::SGD>(model_->head->parameters(), options);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(model_->backbone->parameters(),
                        std::make_unique<torch::optim::SGDOptions>(options));
    groups.emplace_back(model_->head->parameters(),
                        std::make_unique<torch::optim::SGDOptions>(options));
    return std::make_unique<torch::optim::SGD>(std::move(groups), options);
  }

  void apply_lr(double lr, bool probe) {
    set_lr(*optimizer_, lr);
    if (!probe)
      static_cast<torch::optim::SGDOptions&>(optimizer_->param_groups()[0].options())
          .lr(lr * o_.backbone_lr_scale);
  }

  // The checkpoint when there is one (with the optimizer of the phase it was taken in), LP-FT's
  // batch-norm statistics before anything is trained, every rank on rank 0's weights, and the run
  // log.
  void restore() {
    ckpt_ = o_.out + "/checkpoint.pt";
    state_.kind = "classifier";
    state_.config_json = config_.dump();
    optimizer_probe_ = o_.probe_epochs > 0;  // which phase's parameters the optimizer holds
    optimizer_ = make_optimizer(optimizer_probe_);
    if (fs::exists(ckpt_)) {
      CheckpointState peek;
      {
        models::Classifier scratch(num_classes_, pooling());
        peek = load_checkpoint(ckpt_, *scratch, nullptr, "classifier");
      }
      optimizer_probe_ = peek.epoch < o_.probe_epochs;
      optimizer_ = make_optimizer(optimizer_probe_);
      state_ = load_checkpoint(ckpt_, *model_, optimizer_.get(), "classifier");
      check_same_run(json::parse(state_.config_json), config_, kRunKeys, ckpt_,
                     to_json(ClassifierOptions{}));
      extra_ = json::parse(state_.extra_json);
      if (o_.channels_last) util::to_channels_last(*model_);
      std::fprintf(stderr, "classifier: resuming %s after epoch %lld\n", ckpt_.c_str(),
                   static_cast<long long>(state_.epoch));
    }
    if (o_.bn_reestimate && state_.epoch == 0) {
      // LP-FT: the backbone's batch-norm statistics are those of this data before anything is
      // trained.
      InferenceInput in = infer_in_;
      in.shard = false;
      reestimate_batch_norm(*model_->backbone, pixels(), train_items_, in);
      std::fprintf(stderr,
                   "classifier: batch-norm statistics re-estimated on %zu training images\n",
                   train_items_.size());
    }
    distributed::broadcast_module(*model_);
    if (run_.group) {
      std::fprintf(stderr, "classifier: %d ranks x batch %d = global batch %d when fine-tuning%s\n",
                   run_.world, o_.batch_size, run_.world * o_.batch_size,
                   o_.sync_bn ? ", batch norm synchronised" : "");
    }
    if (run_.main)
      log_.emplace(o_.out, state_.step, state_.epoch,
                   std::vector<std::string>{"step", "epoch", "loss", "lr"});
  }

  // One epoch; false when the run stops (resumably) after it.
  bool run_epoch(int64_t epoch) {
    const bool probe = epoch < o_.probe_epochs;
    if (probe != optimizer_probe_) {  // entering fine-tuning: a fresh optimizer over all parameters
      optimizer_ = make_optimizer(probe);
      optimizer_probe_ = probe;
    }
    model_->freeze_backbone(probe);
    const auto t0 = std::chrono::steady_clock::now();
    RunningMeans means;
    double lr = 0;
    if (probe && !o_.probe_augment) {
      lr = train_probe_on_features(epoch, means);
    } else {
      lr = train_on_batches(epoch, probe, means);
    }
    json row = validate(epoch, probe, means, lr);
    row["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (run_.main) std::fprintf(stderr, "classifier: %s\n", row.dump().c_str());
    keep_if_best(epoch, row);
    return end_epoch(epoch, row);
  }

  // The pooled 512-d features the head sees (not L2-normalised, unlike the kNN monitor's).
  torch::Tensor raw_features(const std::vector<int>& items) {
    model_->backbone->eval();
    return infer(pixels(), items, infer_in_,
                 [&](const torch::Tensor& x) { return model_->backbone->features(x); })
        .to(run_.device);
  }

  // The probe on the frozen backbone's features without augmentation, computed once (BN in eval
  // mode): a logistic regression fitted to convergence, or SGD epochs over the cached features.
  // Returns the last lr.
  double train_probe_on_features(int64_t epoch, RunningMeans& means) {
    if (!train_features_.defined()) {
      std::fprintf(stderr,
                   "classifier: embedding %zu train and %zu val images with the frozen backbone\n",
                   train_items_.size(), p_.val.size());
      train_features_ = raw_features(train_items_);
      val_features_ = raw_features(p_.val);
    }
    std::vector<int64_t> tl;
    for (int i : train_items_) tl.push_back(p_.labels[i]);
    const torch::Tensor targets_all = torch::tensor(tl, torch::kLong);
    if (o_.probe_method == "logistic") {
      const auto [l2, ce] =
          fit_logistic_head(*model_->head, train_features_, targets_all, val_features_, val_labels_,
                            class_weights_, o_.probe_l2);
      means.add("loss", ce);
      std::fprintf(stderr,
                   "classifier: logistic probe fitted (L2 penalty %g, chosen on validation; "
                   "training loss %.4f)\n",
                   l2, ce);
      return 0;
    }
    model_->head->train();
    const int64_t n = train_features_.size(0);
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::mt19937_64 rng(data::mix_seed(o_.seed, static_cast<uint64_t>(epoch), 0xFEA7ULL));
    for (int64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    const torch::Tensor perm = torch::tensor(order, torch::kLong);
    const int64_t steps = std::max<int64_t>(1, n / o_.batch_size);
    double lr = 0;
    for (int64_t s = 0; s < steps; ++s) {
      lr = LrSchedule{o_.lr_probe, 0.0, 0, o_.probe_epochs * steps}.at(epoch * steps + s);
      apply_lr(lr, true);
      const torch::Tensor idx = perm.narrow(
          0, s * o_.batch_size, std::min<int64_t>(o_.batch_size, n - s * o_.batch_size));
      const torch::Tensor logits =
          model_->head->forward(train_features_.index_select(0, idx.to(run_.device)));
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits, targets_all.index_select(0, idx).to(run_.device),
          torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights_.to(run_.device)));
      optimizer_->zero_grad();
      loss.backward();
      optimizer_->step();
      ++state_.step;
      means.add("loss", loss.item<double>());
      if (log_) {
        log_->step({std::to_string(state_.step), std::to_string(epoch + 1),
                    format_number(loss.item<double>()), format_number(lr)});
      }
    }
    return lr;
  }

  data::LoaderOptions loader_options() const {
    data::LoaderOptions lo;
    lo.batch_size = o_.batch_size;
    lo.views = 1;
    lo.workers = o_.workers;
    lo.seed = o_.seed;
    lo.drop_last = run_.world > 1 ||
                   static_cast<int>(train_items_.size()) > o_.batch_size;  // BN needs > 1 image
    lo.rank = distributed::rank();
    lo.world = run_.world;
    lo.augment = data::AugmentOptions::preset(o_.augment, o_.crop_size);
    lo.mean = p_.mean;
    lo.std = p_.stdev;
    if (o_.crops == "native") {
      // About one cached pixel per input pixel (scale jitter 0.8-1.25); the crop's place comes from
      // the boxes or the bone, so no translation on top.
      lo.augment.pixel_scale_min = 0.8;
      lo.augment.pixel_scale_max = 1.25;
      lo.augment.translate = 0;
      lo.boxes = train_boxes_;
      lo.bone_candidates = 4;
      lo.masks = o_.box_loss > 0;
    }
    return lo;
  }

  // An epoch over augmented batches: the probe with --probe-augment (backbone frozen, its
  // batch-norm statistics those of pretraining), or fine-tuning, data-parallel across ranks.
  // Returns the last lr.
  double train_on_batches(int64_t epoch, bool probe, RunningMeans& means) {
    if (!loader_)
      loader_ =
          std::make_unique<data::BatchLoader>(pixels(), train_items_, p_.labels, loader_options());
    if (probe) {
      model_->backbone->eval();
      model_->head->train();
    } else {
      model_->train();
    }
    const int64_t phase_epoch = probe ? epoch : epoch - o_.probe_epochs;
    const int64_t phase_epochs = probe ? o_.probe_epochs : o_.finetune_epochs;
    const double lr_peak = probe ? o_.lr_probe : o_.lr_finetune;
    const int64_t steps = loader_->batches_per_epoch();
    loader_->start_epoch(epoch);
    util::Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(total_epochs()) +
                           (probe ? " probe" : " finetune"),
                       steps, "batches", run_.main ? stderr : nullptr);
    double lr = 0;
    while (auto b = loader_->next()) {
      const int64_t warmup = probe ? 0 : o_.warmup_epochs * steps;
      lr =
          LrSchedule{lr_peak, 0.0, warmup, phase_epochs * steps}.at(phase_epoch * steps + b->index);
      apply_lr(lr, probe);
      torch::Tensor x = b->views[0].to(run_.device);
      if (o_.channels_last) x = util::channels_last(x);
      torch::Tensor logits, margins;
      {
        const util::AutocastGuard ac(run_.compute.bf16, run_.device.type());
        if (o_.box_loss > 0 && !probe) {
          const torch::Tensor f = model_->backbone->feature_map(x);
          logits = model_->logits_from_map(f);
          margins = model_->margin_map(f);
        } else {
          logits = model_->forward(x);
        }
      }
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          logits.to(torch::kFloat), b->labels.to(run_.device),
          torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights_.to(run_.device)));
      if (margins.defined()) {
        const torch::Tensor cells = box_cell_loss(margins.to(torch::kFloat), *b);
        means.add("box_loss", cells.item<double>());
        loss = loss + o_.box_loss * cells;
      }
      optimizer_->zero_grad();
      distributed::GradientReducer reducer(
          *model_);  // data-parallel: the ranks' batches make one global batch
      loss.backward();
      reducer.finish();
      optimizer_->step();
      ++state_.step;
      const double l = distributed::sum_over_ranks({loss.item<double>()})[0] / run_.world;
      means.add("loss", l);
      if (log_)
        log_->step({std::to_string(state_.step), std::to_string(epoch + 1), format_number(l),
                    format_number(lr)});
      bar.update(static_cast<size_t>(b->index + 1));
    }
    bar.finish();
    return lr;
  }

  // The epoch's row: training loss, and loss, accuracy and AUROC on validation.
  json validate(int64_t epoch, bool probe, const RunningMeans& means, double lr) {
    torch::Tensor val_logits;
    if (probe && !o_.probe_augment && o_.pooling == "mean") {
      torch::NoGradGuard no_grad;
      model_->head->eval();
      val_logits = model_->head->forward(val_features_).to(torch::kFloat).cpu();
    } else {
      val_logits = logits_of(*model_, pixels(), p_.val, infer_in_);
    }
    const Scores vs = score_logits(val_logits, val_labels_, class_weights_);
    const double val_acc = accuracy_of(vs, val_labels_);
    const double val_auroc = num_classes_ == 2 ? auroc_or_nan(val_labels_, vs.positive) : kNaN;
    json row = {{"epoch", epoch + 1},
                {"phase", probe ? "probe" : "finetune"},
                {"train_loss", means.mean("loss")},
                {"val_loss", vs.loss},
                {"val_accuracy", val_acc},
                {"val_auroc", std::isnan(val_auroc) ? json(nullptr) : json(val_auroc)},
                {"lr", lr}};
    if (o_.box_loss > 0) row["train_box_loss"] = means.mean("box_loss");  // 0 in probe epochs
    return row;
  }

  // Best by validation AUROC (binary) or accuracy; ties keep the earlier epoch. The best weights go
  // to model.pt.
  void keep_if_best(int64_t epoch, const json& row) {
    const double val_auroc = row["val_auroc"].is_null() ? kNaN : row["val_auroc"].get<double>();
    const double val_acc = row["val_accuracy"].get<double>();
    const bool better = num_classes_ == 2 && !std::isnan(val_auroc)
                            ? val_auroc > extra_["best_auroc"].get<double>()
                            : val_acc > extra_["best_accuracy"].get<double>();
    if (!better) return;
    extra_["best_auroc"] = std::isnan(val_auroc) ? -1.0 : val_auroc;
    extra_["best_accuracy"] = val_acc;
    extra_["best_epoch"] = epoch + 1;
    if (run_.main) save_weights(o_.out + "/model.pt", *model_, "classifier", config_.dump());
  }

  // The epoch's log row and checkpoint: as the pacer says (a 10%-label run's epochs take about a
  // second, a checkpoint a quarter of one), after the last epoch, and on a stop. A crash replays
  // the epochs since (bit for bit, from the checkpoint's generator state), and model.pt, written at
  // every better epoch, is rewritten by the replay. False when the run stops here.
  bool end_epoch(int64_t epoch, const json& row) {
    state_.epoch = epoch + 1;
    state_.batch_in_epoch = 0;
    state_.extra_json = extra_.dump();
    pacer_.trained(row["seconds"].get<double>());
    bool saved = false;
    auto save = [&] {
      pacer_.save([&] { save_checkpoint(ckpt_, *model_, optimizer_.get(), state_); });
      saved = true;
    };
    if (run_.main) {
      log_->epoch(row);
      if (state_.epoch == total_epochs() || util::stop_requested() || pacer_.due()) save();
    }
    // The others wait here while rank 0 saves; a stop asked of any rank stops them all, and one asked of another
    // rank only is saved here.
    if (distributed::any_rank(util::stop_requested())) util::request_stop(true);
    if (run_.main && !saved && util::stop_requested()) save();
    if (!util::stop_requested()) return true;
    std::fprintf(stderr, "classifier: stopped after epoch %lld; rerun the same command to resume\n",
                 static_cast<long long>(state_.epoch));
    result_.interrupted = state_.epoch < total_epochs();
    return !result_.interrupted;
  }

  // The best weights, and the operating threshold chosen on validation, frozen for test: rank 0's work.
  ClassifierResult finish() {
    result_.best_epoch = extra_["best_epoch"].get<int>();
    if (!run_.main) return result_;
    infer_in_.shard = false;
    load_weights(o_.out + "/model.pt", *model_, "classifier");
    if (o_.channels_last) util::to_channels_last(*model_);
    const torch::Tensor val_logits = logits_of(*model_, pixels(), p_.val, infer_in_);
    const Scores vs = score_logits(val_logits, val_labels_, class_weights_);
    result_.threshold = 0.5;
    if (num_classes_ == 2) {
      try {
        result_.threshold = metrics::select_threshold(val_labels_, vs.positive, rule_);
      } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "classifier: cannot choose a threshold on validation (%s); using 0.5\n",
                     e.what());
      }
    }
    result_.best_val_auroc = extra_["best_auroc"].get<double>();
    result_.model_path = o_.out + "/model.pt";
    json threshold_json = {{"threshold", result_.threshold},
                           {"rule", metrics::threshold_rule_name(rule_)},
                           {"chosen_on", "validation"},
                           {"val_images", p_.val.size()},
                           {"best_epoch", result_.best_epoch},
                           {"val_auroc", result_.best_val_auroc},
                           {"val_accuracy", extra_["best_accuracy"]}};
    if (num_classes_ == 2) {
      // Calibration and the refer band, on the same validation logits (z1 - z0: the log-odds).
      const torch::Tensor margin_t =
          (val_logits.select(1, 1) - val_logits.select(1, 0)).to(torch::kDouble).contiguous();
      const std::vector<double> margins(margin_t.data_ptr<double>(),
                                        margin_t.data_ptr<double>() + margin_t.numel());
      threshold_json["decision"] =
          fit_decision(val_labels_, margins, result_.threshold, metrics::threshold_rule_name(rule_),
                       o_.refer_fraction);
    }
    util::atomic_write(o_.out + "/threshold.json", threshold_json.dump(2));
    std::fprintf(
        stderr, "classifier: best epoch %d (val AUROC %.4f); threshold %.4f (%s on validation)\n",
        result_.best_epoch, result_.best_val_auroc, result_.threshold, o_.threshold_rule.c_str());
    if (num_classes_ == 2) {
      report_decision(threshold_json["decision"]);
      result_.bundle_path = write_run_bundle(o_.out).path;
    }
    return result_;
  }

  static void report_decision(const json& d) {
    std::fprintf(stderr,
                 "classifier: temperature %.3f (ECE on validation %.3f -> %.3f); calibrated "
                 "threshold %.4f; refer band "
                 "[%.4f, %.4f)\n",
                 d["calibration"]["temperature"].get<double>(),
                 d["calibration"].value("ece_before", 0.0),
                 d["calibration"].value("ece_after", 0.0), d["threshold"].get<double>(),
                 d["refer_band"]["lo"].get<double>(), d["refer_band"]["hi"].get<double>());
  }

  // The per-location box loss of a batch: binary cross-entropy between the margin map [B, h, w]
  // and the cells a box touches (max-pooled box mask), on negatives (every cell 0) and on fractured
  // images with boxes (cells outside the boxes 0); fractured images without boxes are left out.
  // Positive cells are weighted up to balance the negative ones (at most 50x).
  torch::Tensor box_cell_loss(const torch::Tensor& m, const data::Batch& b) const {
    const int64_t h = m.size(1), w = m.size(2);
    namespace F = torch::nn::functional;
    const torch::Tensor target =
        F::adaptive_max_pool2d(b.masks, F::AdaptiveMaxPool2dFuncOptions({h, w}))
            .squeeze(1)
            .to(m.device());
    std::vector<float> use;
    for (size_t k = 0; k < b.items.size(); ++k) {
      const int item = b.items[k];
      use.push_back(p_.labels[item] == 0 || train_boxes_->count(item) ? 1.0f : 0.0f);
    }
    const torch::Tensor weight = torch::tensor(use).view({-1, 1, 1}).to(m.device()).expand_as(m);
    const double pos = (target * weight).sum().item<double>();
    const double neg = ((1 - target) * weight).sum().item<double>();
    if (pos + neg == 0) return torch::zeros({}, m.options());
    const double pos_weight = pos > 0 ? std::clamp(neg / pos, 1.0, 50.0) : 1.0;
    const torch::Tensor cell_w = weight * (1 + (pos_weight - 1) * target);
    return F::binary_cross_entropy_with_logits(
               m, target,
               F::BinaryCrossEntropyWithLogitsFuncOptions().weight(cell_w).reduction(torch::kSum)) /
           cell_w.sum();
  }

  ClassifierOptions o_;
  metrics::ThresholdRule rule_;
  RunStart run_;
  Prepared p_;
  int64_t num_classes_ = 0;
  std::optional<distributed::SyncBatchNorm> sync_bn_;
  models::Classifier model_{nullptr};
  std::vector<float> weights_;
  torch::Tensor class_weights_;
  std::vector<int> train_items_;
  std::shared_ptr<const std::map<int, std::vector<data::Box>>> train_boxes_;
  std::vector<int> val_labels_;
  json config_;
  InferenceInput infer_in_;
  std::string ckpt_;
  CheckpointState state_;
  json extra_ = {{"best_auroc", -1.0}, {"best_accuracy", -1.0}, {"best_epoch", 0}};
  bool optimizer_probe_ = false;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  std::optional<RunLog> log_;
  torch::Tensor train_features_, val_features_;
  std::unique_ptr<data::BatchLoader> loader_;
  CheckpointPacer pacer_{0.05};  // checkpoints near 5% of the training time, as in pretraining
  ClassifierResult result_;
};

}  // namespace

ClassifierResult run_classifier(const ClassifierOptions& options) {
  return ClassifierTrainer(options).run();
}

}  // namespace wristssl::train
