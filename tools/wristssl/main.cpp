// wristssl: the command-line program. It parses options and calls the library; nothing else.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>

#include "wristssl/data/dataset.h"
#include "wristssl/infer/export.h"
#include "wristssl/dist/group.h"
#include "wristssl/dist/launch.h"
#include "wristssl/infer/listen.h"
#include "wristssl/infer/predict.h"
#include "wristssl/serve/server.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/device.h"
#include "wristssl/version.h"
#include "wristssl/data/scan.h"
#include "wristssl/io/read_image.h"
#include "wristssl/metrics/metrics_command.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/pretrain.h"
#include "wristssl/train/protocol.h"
#include "wristssl/train/study.h"
#include "wristssl/train/tune.h"
#include "wristssl/util/tuned.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/progress.h"
#include "wristssl/util/threads.h"
#include "wristssl/util/allocator.h"

namespace {

using namespace wristssl;

// Options every data-reading command shares.
void add_dataset_options(CLI::App* cmd, data::DatasetOptions* o, std::string* layout, bool required = true) {
  auto* data = cmd->add_option("--data", o->data, "folder or csv: GRAZPEDWRI-DX, class folders, manifest, unlabelled tree");
  if (required) data->required();
  cmd->add_option("--layout", *layout, "auto|grazpedwri|folders|manifest|unlabelled")->capture_default_str();
  cmd->add_option("--image-dir", o->image_dirs, "GRAZPEDWRI-DX image folder(s) holding <filestem>.png");
  cmd->add_flag("--exclude-cast", o->exclude_cast, "GRAZPEDWRI-DX: drop images with a cast");
  cmd->add_flag("--exclude-metal", o->exclude_metal, "GRAZPEDWRI-DX: drop images with metal");
  cmd->add_flag("--exclude-uncertain", o->exclude_uncertain, "GRAZPEDWRI-DX: drop uncertain diagnoses");
  cmd->add_option("--negative-class", o->negative_class, "class folder / label of label 0");
  cmd->add_option("--positive-class", o->positive_class, "class folder / label of label 1 (fracture)");
  cmd->add_option("--path-column", o->path_column, "manifest: path column")->capture_default_str();
  cmd->add_option("--label-column", o->label_column, "manifest: label column")->capture_default_str();
  cmd->add_option("--group-column", o->group_column, "manifest: group column (patient)")->capture_default_str();
  cmd->add_option("--where", o->where, "manifest: keep rows where column=value (repeatable)");
}

int run_inspect(const std::string& file, const std::string& out) {
  const io::Image image = io::read_image(file);
  nlohmann::json j = io::info_to_json(image.info);
  j["path"] = file;
  if (!out.empty()) {
    io::write_png16(image, out);
    j["written"] = out;
  }
  std::cout << j.dump(2) << "\n";
  return 0;
}

int run_scan(data::DatasetOptions o, const std::string& layout, const std::string& json_out, int threads) {
  o.layout = data::parse_layout(layout);
  const data::Dataset ds = data::load_dataset(o);
  util::Progress bar("scan", ds.records.size());
  const data::ScanResult result =
      data::scan_dataset(ds, threads, [&](size_t done, size_t total) { bar.update(done); });
  bar.finish();
  std::cout << data::format_scan_report(result);
  if (!json_out.empty()) {
    util::atomic_write(json_out, data::scan_to_json(result).dump(2));
    std::cout << "summary: " << json_out << "\n";
  }
  return 0;
}

// The value after `flag` in argv, or "" (read before parsing so a config file can set the defaults
// that command-line options then override).
std::string find_arg(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
  }
  return "";
}

int run_pretrain(train::PretrainOptions o, const std::string& layout) {
  if (layout != "auto") o.data.layout = data::parse_layout(layout);
  train::install_stop_handlers();
  const train::PretrainResult r = train::run_pretrain(o);
  std::cout << "first step loss " << r.first_loss << ", last epoch loss " << r.last_epoch_loss << ", "
            << r.epochs_done << " epochs, " << r.steps << " steps" << (r.interrupted ? " (interrupted)" : "") << "\n";
  if (!r.backbone_path.empty()) std::cout << "backbone: " << r.backbone_path << "\n";
  return r.interrupted ? 3 : 0;
}

const char* const kCommands[] = {"inspect", "scan",    "pretrain", "train",  "evaluate", "metrics",
                                 "run",     "predict", "bundle",   "export", "serve", "listen", "launch", "study", "tune"};

std::string version_text() {
  std::string s = std::string("wristssl ") + kVersion + "\nLibTorch " + TORCH_VERSION + "\nfeatures:";
  s += torch::cuda::is_available() ? " CUDA (" + std::to_string(torch::cuda::device_count()) + " devices)" : " CUDA (not available)";
  s += util::has_native_bf16(c10::kCPU) ? ", bf16 (native on this CPU)" : ", bf16 (not native on this CPU: fp32 by default)";
  s += ", JPEG 2000 (OpenJPEG), DICOM (DCMTK), PNG 8/16-bit, JPEG, ONNX export, TorchScript export";
  std::string backends;
  for (const std::string& b : dist::available_backends()) backends += (backends.empty() ? "" : " ") + b;
  s += ", distributed (" + (backends.empty() ? std::string("none") : backends) + ")\n";
  return s;
}

// The command named on the command line (the first argument that is not an option or an option's
// value), or "" when there is none.
std::string command_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  util::configure_allocator();  // before any large tensor: see util/allocator.h
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--version" || (i == 1 && std::string(argv[i]) == "version")) {
      std::cout << version_text();
      return 0;
    }
  }
  if (argc > 1 && std::string(argv[1]) == "launch") {  // everything after -- is another program's
    try {
      return dist::run_launch(dist::parse_launch_args(std::vector<std::string>(argv + 2, argv + argc)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 2;
    }
  }
  if (const std::string cmd = command_of(argc, argv);
      !cmd.empty() && std::find(std::begin(kCommands), std::end(kCommands), cmd) == std::end(kCommands)) {
    std::string list;
    for (const char* c : kCommands) list += std::string(list.empty() ? "" : ", ") + c;
    std::fprintf(stderr, "error: unknown command '%s' (commands: %s; wristssl --help for more)\n", cmd.c_str(), list.c_str());
    return 1;
  }
  CLI::App app{"wristssl: wrist fracture detection with self-supervised learning (SimCLR) on LibTorch"};
  app.require_subcommand(1);
  // Global options are accepted before or after the command name.
  app.fallthrough();
  int threads = 0;
  app.add_option("--threads", threads, "threads for LibTorch and decoding (0 = all cores)")->capture_default_str();
  app.add_flag("--version", "print the version, the LibTorch version and the build's features");

  std::string inspect_file, inspect_out;
  auto* inspect = app.add_subcommand("inspect", "print an image's metadata as JSON; --out writes it as 16-bit PNG");
  inspect->add_option("file", inspect_file, "PNG, JPEG or DICOM file")->required();
  inspect->add_option("--out", inspect_out, "write the decoded image (after LUTs / inversion) as 16-bit grey PNG");

  data::DatasetOptions scan_data;
  std::string scan_layout = "auto", scan_json;
  auto* scan = app.add_subcommand("scan", "read every image of a dataset; count classes, groups, unreadable files");
  add_dataset_options(scan, &scan_data, &scan_layout);
  scan->add_option("--json", scan_json, "write the summary as JSON");

  train::PretrainOptions pre;
  std::string pre_layout = "auto", pre_config = find_arg(argc, argv, "--config");
  if (!pre_config.empty() && argc > 1 && std::string(argv[1]) == "pretrain") {
    try {
      train::from_json(nlohmann::json::parse(util::read_text(pre_config)), pre);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: config %s: %s\n", pre_config.c_str(), e.what());
      return 1;
    }
  }
  auto* pretrain = app.add_subcommand("pretrain", "SimCLR pretraining of a ResNet-18 on unlabelled images (resumable)");
  pretrain->add_option("--config", pre_config, "JSON file with pretrain options (keys as in RUN/config.json)");
  pretrain->add_option("--data", pre.data.data, "images: any --data layout, or a Fashion-MNIST IDX folder");
  pretrain->add_option("--layout", pre_layout, "auto|grazpedwri|folders|manifest|unlabelled");
  pretrain->add_option("--image-dir", pre.data.image_dirs, "GRAZPEDWRI-DX image folder(s)");
  pretrain->add_option("--where", pre.data.where, "manifest: keep rows where column=value");
  pretrain->add_option("--group-column", pre.data.group_column, "manifest: group column");
  pretrain->add_option("--out", pre.out, "run folder (rerun the same command to resume)");
  pretrain->add_option("--split", pre.split, "split file: its val/test images are kept out of pretraining");
  pretrain->add_option("--cache-dir", pre.cache_dir, "preprocessing cache folder")->capture_default_str();
  pretrain->add_option("--limit", pre.limit, "IDX data: images per split (0 = all)")->capture_default_str();
  pretrain->add_option("--image-size", pre.image_size, "cached image side (the paper: 512)")->capture_default_str();
  pretrain->add_option("--crop-size", pre.crop_size, "view side fed to the network (0 = image size)")->capture_default_str();
  pretrain->add_option("--epochs", pre.epochs, "epochs")->capture_default_str();
  pretrain->add_option("--batch-size", pre.batch_size, "images per batch (2 views each)")->capture_default_str();
  pretrain->add_option("--lr", pre.lr, "peak learning rate")->capture_default_str();
  pretrain->add_option("--warmup-epochs", pre.warmup_epochs, "linear warmup epochs")->capture_default_str();
  pretrain->add_option("--weight-decay", pre.weight_decay, "weight decay")->capture_default_str();
  pretrain->add_option("--optimizer", pre.optimizer, "sgd|lars")->capture_default_str();
  pretrain->add_option("--temperature", pre.temperature, "contrastive temperature (MoCo v2: 0.2)")->capture_default_str();
  pretrain->add_option("--method", pre.method,
                       "simclr (NT-Xent) | dcl (decoupled contrastive loss) | moco (MoCo v2: momentum encoder, queue)")
      ->capture_default_str();
  pretrain->add_option("--moco-queue", pre.moco_queue, "MoCo: negatives kept in the queue")->capture_default_str();
  pretrain->add_option("--moco-momentum", pre.moco_momentum, "MoCo: key encoder momentum")->capture_default_str();
  pretrain->add_option("--moco-key-splits", pre.moco_key_splits,
                       "MoCo: shuffled chunks with their own batch norm for the keys (shuffle-BN; 1 = off)")
      ->capture_default_str();
  pretrain->add_option("--head", pre.head, "projection head: mlp (512-512-128) | linear (the paper)")->capture_default_str();
  pretrain->add_option("--augment", pre.augment, "augmentation preset: xray | xray-clean (no blur, noise) | paper")->capture_default_str();
  pretrain->add_option("--precision", pre.precision, "auto|fp32|bf16")->capture_default_str();
  pretrain->add_option("--init", pre.init, "torchvision ResNet-18 state dict to start from (torch.save)");
  pretrain->add_option("--seed", pre.seed, "seed for data order and augmentations")->capture_default_str();
  pretrain->add_option("--workers", pre.workers, "loader threads")->capture_default_str();
  pretrain->add_option("--knn-every", pre.knn_every, "epochs between kNN monitors (labelled data; 0 = off; -1 = auto: about 5% of training time, and the last epoch)")->capture_default_str();
  pretrain->add_option("--knn-max", pre.knn_max, "images embedded by the kNN monitor")->capture_default_str();
  pretrain->add_option("--max-steps", pre.max_steps, "stop (resumably) after this many steps")->capture_default_str();
  pretrain->add_flag("--sync-bn", pre.sync_bn, "distributed: batch norm over the global batch");
  pretrain->add_option("--dist-backend", pre.dist_backend, "distributed: auto|gloo|nccl")->capture_default_str();
  pretrain->add_option("--dist-timeout", pre.dist_timeout, "distributed: seconds before a dead or hung rank ends the job")->capture_default_str();

  train::ClassifierOptions cls;
  std::string cls_layout = "auto";
  if (!pre_config.empty() && argc > 1 && std::string(argv[1]) == "train") {
    try {
      train::from_json(nlohmann::json::parse(util::read_text(pre_config)), cls);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: config %s: %s\n", pre_config.c_str(), e.what());
      return 1;
    }
  }
  auto* trainc = app.add_subcommand("train", "fracture classifier: head on the frozen backbone, then fine-tuning (resumable)");
  trainc->add_option("--config", pre_config, "JSON file with train options (keys as in RUN/config.json)");
  trainc->add_option("--data", cls.data.data, "labelled images: any --data layout");
  trainc->add_option("--layout", cls_layout, "auto|grazpedwri|folders|manifest");
  trainc->add_option("--image-dir", cls.data.image_dirs, "GRAZPEDWRI-DX image folder(s)");
  trainc->add_option("--where", cls.data.where, "manifest: keep rows where column=value");
  trainc->add_option("--group-column", cls.data.group_column, "manifest: group column");
  trainc->add_option("--out", cls.out, "run folder");
  trainc->add_option("--split", cls.split, "split file (default RUN/split.json, made when absent)");
  trainc->add_option("--cache-dir", cls.cache_dir, "preprocessing cache folder")->capture_default_str();
  trainc->add_option("--image-size", cls.image_size, "image side")->capture_default_str();
  trainc->add_option("--backbone", cls.backbone, "SimCLR backbone (PRETRAIN_RUN/backbone.pt)");
  trainc->add_option("--init", cls.init, "simclr | random (supervised baseline)")->capture_default_str();
  trainc->add_option("--probe-epochs", cls.probe_epochs, "epochs of the head on the frozen backbone")->capture_default_str();
  trainc->add_option("--finetune-epochs", cls.finetune_epochs, "epochs of whole-model fine-tuning")->capture_default_str();
  trainc->add_option("--batch-size", cls.batch_size, "batch size")->capture_default_str();
  trainc->add_option("--lr-probe", cls.lr_probe, "learning rate of the probe")->capture_default_str();
  trainc->add_option("--lr-finetune", cls.lr_finetune, "learning rate of fine-tuning")->capture_default_str();
  trainc->add_option("--imbalance", cls.imbalance, "weighted | balanced | none")->capture_default_str();
  trainc->add_option("--label-fraction", cls.label_fraction, "share of training labels used (grouped, stratified)")->capture_default_str();
  trainc->add_option("--threshold-rule", cls.threshold_rule, "youden | sensitivity:0.95 (chosen on validation)")->capture_default_str();
  trainc->add_option("--refer-fraction", cls.refer_fraction,
                     "share of validation images nearest the threshold that sets the refer band")->capture_default_str();
  trainc->add_option("--probe-method", cls.probe_method, "sgd | logistic (L2 logistic regression on standardised features)")->capture_default_str();
  trainc->add_option("--probe-l2", cls.probe_l2, "logistic probe: L2 penalty (0: chosen on validation)")->capture_default_str();
  trainc->add_flag("--bn-reestimate", cls.bn_reestimate, "re-estimate batch-norm statistics on the training images first (LP-FT)");
  trainc->add_option("--warmup-epochs", cls.warmup_epochs, "fine-tuning: linear warm-up epochs")->capture_default_str();
  trainc->add_option("--backbone-lr-scale", cls.backbone_lr_scale, "fine-tuning: backbone learning rate = lr-finetune x this")->capture_default_str();
  trainc->add_option("--crop-size", cls.crop_size, "training crop (0: the image size)")->capture_default_str();
  trainc->add_option("--workers", cls.workers, "loader threads")->capture_default_str();
  trainc->add_option("--precision", cls.precision, "auto|fp32|bf16")->capture_default_str();
  trainc->add_option("--seed", cls.seed, "seed")->capture_default_str();
  trainc->add_flag("--sync-bn", cls.sync_bn, "distributed: batch norm over the global batch when fine-tuning");
  trainc->add_option("--dist-backend", cls.dist_backend, "distributed: auto|gloo|nccl")->capture_default_str();
  trainc->add_option("--dist-timeout", cls.dist_timeout, "distributed: seconds before a dead or hung rank ends the job")->capture_default_str();
  trainc->add_option("--limit", cls.limit, "IDX data: images per split")->capture_default_str();

  train::EvaluateOptions ev;
  std::string ev_layout = "auto";
  auto* evaluate = app.add_subcommand(
      "evaluate", "metrics with 95% CIs, scores CSV and report: a run's own split (--run), or any labelled data (--model --data)");
  evaluate->add_option("--run", ev.run, "classifier run folder: score a part of its own split");
  evaluate->add_option("--part", ev.part, "with --run: test | val | train")->capture_default_str();
  evaluate->add_option("--model", ev.model, "model bundle (model.wristssl): score the labelled --data at its frozen threshold");
  add_dataset_options(evaluate, &ev.data, &ev_layout, false);
  evaluate->add_option("--out", ev.out, "with --model: output folder (default evaluation-<model name>)");
  evaluate->add_option("--cache-dir", ev.cache_dir, "preprocessing cache folder")->capture_default_str();
  evaluate->add_option("--precision", ev.precision, "fp32 | bf16 | auto")->capture_default_str();
  evaluate->add_option("--bootstrap", ev.bootstrap, "bootstrap resamples")->capture_default_str();
  evaluate->add_option("--gallery", ev.gallery, "most confident errors shown per kind, with Grad-CAM")->capture_default_str();
  evaluate->add_flag("!--no-report", ev.report, "do not write report.html");

  infer::PredictOptions pr;
  auto* predict = app.add_subcommand("predict", "score radiographs (PNG, JPEG, DICOM files or folders) with a model bundle");
  predict->add_option("--model", pr.model, "model bundle (model.wristssl)")->required();
  predict->add_option("inputs", pr.inputs, "image files and folders (recursive)")->required();
  predict->add_option("--csv", pr.csv, "write path,probability,decision,error here (default: standard output)");
  predict->add_option("--json", pr.json, "write the rows as JSON, with margins, warnings and the model's identity");
  predict->add_option("--heatmaps", pr.heatmaps, "folder for Grad-CAM overlays (<stem>.gradcam.png)");
  predict->add_option("--dicom-out", pr.dicom_out, "for each DICOM input, write a TID 1500 structured report and a Grad-CAM secondary capture here");
  predict->add_option("--uid-root", pr.uid_root, "root of the new objects' UIDs (default 2.25: UUID-derived)")->capture_default_str();
  predict->add_option("--batch-size", pr.batch_size, "images per forward pass (0: by input size, 1 at 512 px)")
      ->capture_default_str();
  predict->add_option("--precision", pr.precision, "fp32 | bf16 | auto")->capture_default_str();

  std::string bundle_run, bundle_out, bundle_name;
  auto* bundlec = app.add_subcommand("bundle", "write the model bundle of a finished classifier run");
  bundlec->add_option("--run", bundle_run, "classifier run folder")->required();
  bundlec->add_option("--out", bundle_out, "bundle file (default RUN/model.wristssl)");
  bundlec->add_option("--name", bundle_name, "model name recorded in the bundle (default: the run folder's name)");

  infer::ListenOptions lo;
  auto* listenc = app.add_subcommand("listen", "a DICOM node: receive radiographs by C-STORE, send back a structured report and a heatmap image");
  listenc->add_option("--model", lo.model, "model bundle (model.wristssl)")->required();
  listenc->add_option("--aet", lo.node.aet, "this node's AE title")->capture_default_str();
  listenc->add_option("--port", lo.node.port, "port to listen on")->capture_default_str();
  listenc->add_option("--state", lo.node.state_dir, "folder for received instances and results (incoming/, results/, outbox/, failed/)")->capture_default_str();
  listenc->add_option("--forward", lo.node.forward, "send the results to HOST:PORT:AET (a PACS or router)");
  listenc->add_option("--queue", lo.node.queue_capacity, "instances waiting to be scored; beyond it, senders get 0xA700 and retry")->capture_default_str();
  listenc->add_option("--uid-root", lo.node.uid_root, "root of the results' UIDs")->capture_default_str();
  listenc->add_option("--timeout", lo.node.timeout_s, "network timeouts in seconds")->capture_default_str();
  listenc->add_option("--max-instances", lo.node.max_instances, "stop after handling this many instances (0: run until stopped)")->capture_default_str();
  listenc->add_option("--precision", lo.precision, "fp32 | bf16 | auto")->capture_default_str();

  serve::ServeOptions so;
  auto* servec = app.add_subcommand("serve", "serve a bundle over HTTP: Open Inference Protocol v2, /v1/predict, a page at /");
  servec->add_option("--model", so.model, "model bundle (model.wristssl)")->required();
  servec->add_option("--host", so.host, "address to listen on (loopback by default)")->capture_default_str();
  servec->add_option("--port", so.port, "port")->capture_default_str();
  servec->add_option("--token-file", so.token_file, "file whose first line is the bearer token every request must carry");
  servec->add_option("--tls-cert", so.tls_cert, "PEM certificate: serve HTTPS");
  servec->add_option("--tls-key", so.tls_key, "PEM private key of --tls-cert");
  servec->add_option("--max-batch", so.max_batch, "images per forward pass")->capture_default_str();
  servec->add_option("--max-delay-ms", so.max_delay_ms, "how long a request waits for others to batch with")->capture_default_str();
  servec->add_option("--queue", so.queue, "images waiting; beyond it, 503 with Retry-After")->capture_default_str();
  servec->add_option("--max-body-mb", so.max_body_mb, "largest request body")->capture_default_str();
  servec->add_option("--read-timeout", so.read_timeout_s, "seconds a client may take to send a request")->capture_default_str();
  servec->add_option("--http-threads", so.http_threads, "connections served at once")->capture_default_str();
  servec->add_option("--precision", so.precision, "fp32 | bf16 | auto")->capture_default_str();
  servec->add_flag("!--no-log", so.log, "no JSON log line per request");

  std::string export_model, export_format, export_out;
  auto* exportc = app.add_subcommand("export", "export a bundle to TorchScript, ONNX or a torchvision state dict");
  exportc->add_option("--model", export_model, "model bundle (model.wristssl)")->required();
  exportc->add_option("--format", export_format, "torchscript | onnx | torchvision")->required();
  exportc->add_option("--out", export_out, "output file")->required();

  metrics::MetricsCommandOptions mo;
  double mo_threshold = -1;
  auto* metricsc = app.add_subcommand("metrics", "the paper's metrics with 95% CIs from any model's scores (label,score[,group])");
  metricsc->add_option("--scores", mo.scores_csv, "CSV with columns label,score (higher = fracture)")->required();
  metricsc->add_option("--threshold", mo_threshold, "operating threshold (default 0.5)");
  metricsc->add_option("--json", mo.json_out, "write the metrics as JSON");
  metricsc->add_option("--bootstrap", mo.bootstrap, "bootstrap resamples")->capture_default_str();
  metricsc->add_option("--seed", mo.seed, "bootstrap seed")->capture_default_str();
  metricsc->add_option("--threshold-rule", mo.threshold_rule, "rule whose choice on this data is shown (information only)")
      ->capture_default_str();

  std::string run_config;
  auto* runc = app.add_subcommand("run", "the whole protocol: split, pretrain, probe + fine-tune, evaluate, report (resumable)");
  runc->add_option("--config", run_config, "run config (JSON; see configs/)")->required();

  std::string study_config, study_out;
  bool study_quick = false;
  auto* studyc = app.add_subcommand(
      "study", "does pretraining pay off? grouped k-fold x seeds x label fractions x arms, paired tests, plot (resumable)");
  studyc->add_option("--config", study_config, "study config (JSON; see configs/study_fracatlas.json)");
  studyc->add_flag("--quick", study_quick, "the same code on the bundled sample, in about a minute (no --config needed)");
  studyc->add_option("--out", study_out, "output folder (overrides the config's 'out')");

  train::TuneOptions tune_opts;
  bool tune_show = false;
  auto* tunec = app.add_subcommand(
      "tune", "measure the training step for each thread count and precision here; the fastest becomes this machine's default");
  tunec->add_option("--size", tune_opts.size, "view side of the measured step")->capture_default_str();
  tunec->add_option("--batch", tune_opts.batch, "images per step (2 views each)")->capture_default_str();
  tunec->add_option("--steps", tune_opts.steps, "timed steps per configuration")->capture_default_str();
  tunec->add_flag("--show", tune_show, "print this machine's stored choice and exit");

  CLI11_PARSE(app, argc, argv);
  try {
    util::set_threads(threads);
    if (*inspect) return run_inspect(inspect_file, inspect_out);
    if (*scan) return run_scan(scan_data, scan_layout, scan_json, threads);
    if (*trainc) {
      cls.threads = threads;
      if (cls_layout != "auto") cls.data.layout = data::parse_layout(cls_layout);
      train::install_stop_handlers();
      const train::ClassifierResult r = train::run_classifier(cls);
      std::cout << "best epoch " << r.best_epoch << " (val AUROC " << r.best_val_auroc << "), threshold " << r.threshold
                << "\nmodel: " << r.model_path << "\n";
      return r.interrupted ? 3 : 0;
    }
    if (*evaluate) {
      ev.threads = threads;
      if (ev_layout != "auto") ev.data.layout = data::parse_layout(ev_layout);
      train::run_evaluate(ev);
      return 0;
    }
    if (*predict) {
      pr.threads = threads;
      infer::run_predict(pr, std::cout);
      return 0;
    }
    if (*listenc) {
      lo.threads = threads;
      return infer::run_listen(lo);
    }
    if (*servec) {
      so.threads = threads;
      return serve::run_serve(so);
    }
    if (*bundlec) {
      const models::Bundle b = train::write_run_bundle(bundle_run, bundle_out, bundle_name);
      std::cout << b.path << "\n" << b.id() << "\nsha256 " << b.sha256 << "\n";
      return 0;
    }
    if (*exportc) {
      infer::export_model(export_model, export_format, export_out);
      std::cout << export_format << ": " << export_out << "\n";
      return 0;
    }
    if (*metricsc) {
      if (mo_threshold >= 0) mo.threshold = mo_threshold;
      return metrics::run_metrics_command(mo, std::cout);
    }
    if (*tunec) {
      if (tune_show) {
        const auto c = util::cached_choice();
        std::cout << "machine: " << util::machine_key() << "\ncache: " << util::tune_cache_path() << "\n"
                  << (c ? "choice: " + std::string(c->bf16 ? "bf16" : "fp32") + ", " + std::to_string(c->threads) +
                              " thread(s), tuned " + c->date + " (" + c->why + ")\n"
                        : std::string("choice: none (not tuned: all cores, bf16 where native)\n"));
        return 0;
      }
      const nlohmann::json entry = train::run_tune(tune_opts);
      std::cout << entry.dump(2) << "\n";
      return 0;
    }
    if (*studyc) {
      if (study_config.empty() && !study_quick) throw std::runtime_error("study needs --config FILE or --quick");
      nlohmann::json cfg = study_config.empty() ? train::quick_study_config("runs/study-quick")
                                                : nlohmann::json::parse(util::read_text(study_config));
      if (!study_out.empty()) cfg["out"] = study_out;
      const nlohmann::json s = train::run_study(cfg, threads);
      std::cout << train::render_study_markdown(s) << "report: " << cfg["out"].get<std::string>() << "/study.html\n";
      return 0;
    }
    if (*runc) {
      const nlohmann::json s = train::run_protocol(run_config, threads);
      std::cout << s.dump(2) << "\n";
      for (const char* stage : {"classifier", "baseline"}) {
        if (s.contains(stage)) std::cout << stage << " report: " << s[stage]["report"].get<std::string>() << "\n";
      }
      return 0;
    }
    if (*pretrain) {
      pre.threads = threads;
      return run_pretrain(pre, pre_layout);
    }
  } catch (const io::ImageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
