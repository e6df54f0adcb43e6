// `wristssl pretrain`: SimCLR (or DCL, MoCo v2) pretraining of the backbone.
#include <iostream>
#include <memory>

#include "commands.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/util/stop_signal.h"

namespace wristssl::cli {
namespace {

struct Args {
  train::PretrainOptions options;
  std::string layout = "auto";
  // Read before parsing (read_config_in); bound so that CLI11 accepts --config and lists it.
  std::string config;
};

void read_config_in(const std::string& path, train::PretrainOptions& o) {
  read_config(path, [&](const nlohmann::json& j) { train::from_json(j, o); });
}

CLI::App* add_options(CLI::App& app, Args& a) {
  train::PretrainOptions& o = a.options;
  auto* cmd = app.add_subcommand(
      "pretrain", "SimCLR pretraining of a ResNet-18 on unlabelled images (resumable)");
  cmd->add_option("--config", a.config,
                  "JSON file with pretrain options (keys as in RUN/config.json)");
  cmd->add_option("--data", o.data.data,
                  "images: any --data layout, or a Fashion-MNIST IDX folder");
  cmd->add_option("--layout", a.layout, "auto|grazpedwri|folders|manifest|unlabelled");
  cmd->add_option("--image-dir", o.data.image_dirs, "GRAZPEDWRI-DX image folder(s)");
  cmd->add_option("--where", o.data.where, "manifest: keep rows where column=value");
  cmd->add_option("--group-column", o.data.group_column, "manifest: group column");
  cmd->add_option("--out", o.out, "run folder (rerun the same command to resume)");
  cmd->add_option("--split", o.split,
                  "split file: its val/test images are kept out of pretraining");
  cmd->add_option("--cache-dir", o.cache_dir, "preprocessing cache folder")->capture_default_str();
  cmd->add_option("--limit", o.limit, "IDX data: images per split (0 = all)")
      ->capture_default_str();
  cmd->add_option("--image-size", o.image_size, "cached image side (the paper: 512)")
      ->capture_default_str();
  cmd->add_option("--crop-size", o.crop_size, "view side fed to the network (0 = image size)")
      ->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "epochs")->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "images per batch (2 views each)")
      ->capture_default_str();
  cmd->add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--warmup-epochs", o.warmup_epochs, "linear warmup epochs")
      ->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "weight decay")->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "sgd|lars")->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "contrastive temperature (MoCo v2: 0.2)")
      ->capture_default_str();
  cmd->add_option("--method", o.method,
                  "simclr (NT-Xent) | dcl (decoupled contrastive loss) | moco (MoCo v2: momentum "
                  "encoder, queue)")
      ->capture_default_str();
  cmd->add_option("--moco-queue", o.moco_queue, "MoCo: negatives kept in the queue")
      ->capture_default_str();
  cmd->add_option("--moco-momentum", o.moco_momentum, "MoCo: key encoder momentum")
      ->capture_default_str();
  cmd->add_option(
         "--moco-key-splits", o.moco_key_splits,
         "MoCo: shuffled chunks with their own batch norm for the keys (shuffle-BN; 1 = off)")
      ->capture_default_str();
  cmd->add_option("--head", o.head, "projection head: mlp (512-512-128) | linear (the paper)")
      ->capture_default_str();
  cmd->add_option("--augment", o.augment,
                  "augmentation preset: xray | xray-clean (no blur, noise) | paper")
      ->capture_default_str();
  cmd->add_option("--precision", o.precision, "auto|fp32|bf16")->capture_default_str();
  cmd->add_option("--init", o.init, "torchvision ResNet-18 state dict to start from (torch.save)");
  cmd->add_option("--seed", o.seed, "seed for data order and augmentations")->capture_default_str();
  cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
  cmd->add_option("--knn-every", o.knn_every,
                  "epochs between kNN monitors (labelled data; 0 = off; -1 = auto: about 5% of "
                  "training time, and the last epoch)")
      ->capture_default_str();
  cmd->add_option("--knn-max", o.knn_max, "images embedded by the kNN monitor")
      ->capture_default_str();
  cmd->add_option("--max-steps", o.max_steps, "stop (resumably) after this many steps")
      ->capture_default_str();
  cmd->add_flag("--sync-bn", o.sync_bn, "distributed: batch norm over the global batch");
  cmd->add_option("--dist-backend", o.dist_backend, "distributed: auto|gloo|nccl")
      ->capture_default_str();
  cmd->add_option("--dist-timeout", o.dist_timeout,
                  "distributed: seconds before a dead or hung rank ends the job")
      ->capture_default_str();
  return cmd;
}

// --layout only overrides when given, so that a config file's data layout stands otherwise.
train::PretrainOptions resolve(const Args& a) {
  train::PretrainOptions o = a.options;
  if (a.layout != "auto") o.data.layout = data::parse_layout(a.layout);
  return o;
}

int run(train::PretrainOptions o, int threads) {
  o.threads = threads;
  util::install_stop_handlers();
  const train::PretrainResult r = train::run_pretrain(o);
  std::cout << "first step loss " << r.first_loss << ", last epoch loss " << r.last_epoch_loss
            << ", " << r.epochs_done << " epochs, " << r.steps << " steps"
            << (r.interrupted ? " (interrupted)" : "") << "\n";
  if (!r.backbone_path.empty()) std::cout << "backbone: " << r.backbone_path << "\n";
  return r.interrupted ? 3 : 0;
}

}  // namespace

train::PretrainOptions parse_pretrain(const std::vector<std::string>& args) {
  Args a;
  read_config_in(find_arg(args, "--config"), a.options);
  parse_command(args, [&](CLI::App& app) { return add_options(app, a); });
  return resolve(a);
}

Command add_pretrain_command(CLI::App& app, const Globals& g,
                             const std::vector<std::string>& argv) {
  auto a = std::make_shared<Args>();
  // Read before parsing, so that the flags given beside --config override the file; only for this
  // command (`wristssl --threads 2 pretrain --config F` too).
  if (command_of(argv) == "pretrain") read_config_in(find_arg(argv, "--config"), a->options);
  return {add_options(app, *a), [a, &g] { return run(resolve(*a), g.threads); }};
}

}  // namespace wristssl::cli
