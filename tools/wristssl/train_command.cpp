// `wristssl train`: the fracture classifier, a probe on the frozen backbone and then fine-tuning.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/train/classifier.h"
#include "wristssl/util/stop_signal.h"

namespace wristssl::cli {
namespace {

struct Args {
  train::ClassifierOptions options;
  std::string layout = "auto";
  // Read before parsing (read_config_in); bound so that CLI11 accepts --config and lists it.
  std::string config;
};

void read_config_in(const std::string& path, train::ClassifierOptions& o) {
  read_config(path, [&](const nlohmann::json& j) { train::from_json(j, o); });
}

CLI::App* add_options(CLI::App& app, Args& a) {
  train::ClassifierOptions& o = a.options;
  auto* cmd = app.add_subcommand(
      "train", "fracture classifier: head on the frozen backbone, then fine-tuning (resumable)");
  cmd->add_option("--config", a.config,
                  "JSON file with train options (keys as in RUN/config.json)");
  cmd->add_option("--data", o.data.data, "labelled images: any --data layout");
  cmd->add_option("--layout", a.layout, "auto|grazpedwri|folders|manifest");
  cmd->add_option("--image-dir", o.data.image_dirs, "GRAZPEDWRI-DX image folder(s)");
  cmd->add_option("--where", o.data.where, "manifest: keep rows where column=value");
  cmd->add_option("--group-column", o.data.group_column, "manifest: group column");
  cmd->add_option("--out", o.out, "run folder");
  cmd->add_option("--split", o.split, "split file (default RUN/split.json, made when absent)");
  cmd->add_option("--cache-dir", o.cache_dir, "preprocessing cache folder")->capture_default_str();
  cmd->add_option("--image-size", o.image_size, "image side")->capture_default_str();
  cmd->add_option("--backbone", o.backbone, "SimCLR backbone (PRETRAIN_RUN/backbone.pt)");
  cmd->add_option("--init", o.init, "simclr | random (supervised baseline)")->capture_default_str();
  cmd->add_option("--probe-epochs", o.probe_epochs, "epochs of the head on the frozen backbone")
      ->capture_default_str();
  cmd->add_option("--finetune-epochs", o.finetune_epochs, "epochs of whole-model fine-tuning")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "batch size")->capture_default_str();
  cmd->add_option("--lr-probe", o.lr_probe, "learning rate of the probe")->capture_default_str();
  cmd->add_option("--lr-finetune", o.lr_finetune, "learning rate of fine-tuning")
      ->capture_default_str();
  cmd->add_option("--imbalance", o.imbalance, "weighted | balanced | none")->capture_default_str();
  cmd->add_option("--label-fraction", o.label_fraction,
                  "share of training labels used (grouped, stratified)")
      ->capture_default_str();
  cmd->add_option("--threshold-rule", o.threshold_rule,
                  "youden | sensitivity:0.95 (chosen on validation)")
      ->capture_default_str();
  cmd->add_option("--refer-fraction", o.refer_fraction,
                  "share of validation images nearest the threshold that sets the refer band")
      ->capture_default_str();
  cmd->add_option("--probe-method", o.probe_method,
                  "sgd | logistic (L2 logistic regression on standardised features)")
      ->capture_default_str();
  cmd->add_option("--probe-l2", o.probe_l2, "logistic probe: L2 penalty (0: chosen on validation)")
      ->capture_default_str();
  cmd->add_flag("--bn-reestimate", o.bn_reestimate,
                "re-estimate batch-norm statistics on the training images first (LP-FT)");
  cmd->add_option("--warmup-epochs", o.warmup_epochs, "fine-tuning: linear warm-up epochs")
      ->capture_default_str();
  cmd->add_option("--backbone-lr-scale", o.backbone_lr_scale,
                  "fine-tuning: backbone learning rate = lr-finetune x this")
      ->capture_default_str();
  cmd->add_option("--crop-size", o.crop_size, "training crop (0: the image size)")
      ->capture_default_str();
  cmd->add_option("--crops", o.crops,
                  "resized (a share of the image resized to --crop-size) | native (crops at the "
                  "cached pixel scale, on a box or on bone; whole images scored)")
      ->capture_default_str();
  cmd->add_option("--pooling", o.pooling,
                  "mean | lse (log-sum-exp of the per-location fracture log-odds)")
      ->capture_default_str();
  cmd->add_option("--pool-sharpness", o.pool_sharpness, "r of lse pooling")->capture_default_str();
  cmd->add_option("--box-loss", o.box_loss,
                  "weight of the per-location loss on the training images' boxes (0: off)")
      ->capture_default_str();
  cmd->add_option("--boxes", o.data.boxes, "folder of YOLO box files, <image stem>.txt");
  cmd->add_option("--box-class", o.data.box_class, "class index of the fracture boxes (-1: all)")
      ->capture_default_str();
  cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
  cmd->add_option("--precision", o.precision, "auto|fp32|bf16")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed")->capture_default_str();
  cmd->add_flag("--sync-bn", o.sync_bn,
                "distributed: batch norm over the global batch when fine-tuning");
  cmd->add_option("--dist-backend", o.dist_backend, "distributed: auto|gloo|nccl")
      ->capture_default_str();
  cmd->add_option("--dist-timeout", o.dist_timeout,
                  "distributed: seconds before a dead or hung rank ends the job")
      ->capture_default_str();
  cmd->add_option("--limit", o.limit, "IDX data: images per split")->capture_default_str();
  return cmd;
}

// --layout only overrides when given, so that a config file's data layout stands otherwise.
train::ClassifierOptions resolve(const Args& a) {
  train::ClassifierOptions o = a.options;
  if (a.layout != "auto") o.data.layout = data::parse_layout(a.layout);
  return o;
}

int run(train::ClassifierOptions o, int threads) {
  o.threads = threads;
  util::install_stop_handlers();
  const train::ClassifierResult r = train::run_classifier(o);
  std::cout << "best epoch " << r.best_epoch << " (val AUROC " << r.best_val_auroc
            << "), threshold " << r.threshold << "\nmodel: " << r.model_path << "\n";
  return r.interrupted ? 3 : 0;
}

}  // namespace

train::ClassifierOptions parse_train(const std::vector<std::string>& args) {
  Args a;
  read_config_in(find_arg(args, "--config"), a.options);
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_train_command(CLI::App& app, const Globals& g, const std::vector<std::string>& argv) {
  auto a = std::make_shared<Args>();
  // Read before parsing, so that the flags given beside --config override the file; only for this
  // command (`wristssl --threads 2 train --config F` too).
  if (command_of(argv) == "train") read_config_in(find_arg(argv, "--config"), a->options);
  return {add_options(app, *a), [a, &g] { return run(resolve(*a), g.threads); }};
}

}  // namespace wristssl::cli
