#include "wristssl/train/common.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "wristssl/data/loader.h"
#include "wristssl/dist/group.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/util/autocast.h"
#include "wristssl/train/options_json.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/memory_format.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {

namespace {

// The one list of DatasetOptions' fields ("layout" is an enum, handled apart).
const auto kVisitData = [](auto& o, auto&& f) {
  f("data", o.data);
  f("image_dirs", o.image_dirs);
  f("exclude_cast", o.exclude_cast);
  f("exclude_metal", o.exclude_metal);
  f("exclude_uncertain", o.exclude_uncertain);
  f("negative_class", o.negative_class);
  f("positive_class", o.positive_class);
  f("path_column", o.path_column);
  f("label_column", o.label_column);
  f("group_column", o.group_column);
  f("where", o.where);
};

}  // namespace

json data_options_to_json(const data::DatasetOptions& o) {
  json j = options_to_json(o, kVisitData);
  j["layout"] = data::layout_name(o.layout);
  return j;
}

void data_options_from_json(const json& j, data::DatasetOptions& o) {
  if (j.is_string()) {
    o.data = j.get<std::string>();
    return;
  }
  options_from_json(j, o, kVisitData, data_options_to_json(o), "data");
  if (j.contains("layout")) o.layout = data::parse_layout(j["layout"].get<std::string>());
}

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return peak * static_cast<double>(step + 1) / warmup_steps;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  return min + 0.5 * (peak - min) * (1 + std::cos(M_PI * progress));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
}

void apply_lars(torch::optim::Optimizer& optimizer, double weight_decay, double eta) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (!p.grad().defined() || p.dim() <= 1) continue;
      torch::Tensor g = p.grad() + weight_decay * p;
      const double wn = p.norm().item<double>(), gn = g.norm().item<double>();
      const double trust = (wn > 0 && gn > 0) ? eta * wn / gn : 1.0;
      p.mutable_grad() = g * trust;
    }
  }
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(util::channels_last(p.data()));
  }
}

void RunningMeans::add(const std::string& key, double value) {
  auto& s = sums_[key];
  s.first += value;
  s.second += 1;
}

double RunningMeans::mean(const std::string& key) const {
  const auto it = sums_.find(key);
  return it == sums_.end() || it->second.second == 0 ? 0.0 : it->second.first / it->second.second;
}

std::string RunningMeans::to_json() const {
  json j = json::object();
  for (const auto& [k, s] : sums_) j[k] = {s.first, s.second};
  return j.dump();
}

RunningMeans RunningMeans::from_json(const std::string& text) {
  RunningMeans r;
  if (text.empty()) return r;
  const json parsed = json::parse(text);  // named: items() of a temporary would dangle in the loop
  for (const auto& [k, v] : parsed.items()) r.sums_[k] = {v[0].get<double>(), v[1].get<int64_t>()};
  return r;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

namespace {

// Keeps the header and the rows whose first column (a number) is <= limit.
void truncate_csv(const std::string& path, int64_t limit) {
  if (!fs::exists(path)) return;
  std::istringstream in(util::read_text(path));
  std::string line, out;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= limit)) out += line + "\n";
    header = false;
  }
  util::atomic_write(path, out);
}

void truncate_jsonl(const std::string& path, int64_t max_epoch) {
  if (!fs::exists(path)) return;
  std::istringstream in(util::read_text(path));
  std::string line, out;
  while (std::getline(in, line)) {
    if (!line.empty() && json::parse(line).value("epoch", int64_t{0}) <= max_epoch) out += line + "\n";
  }
  util::atomic_write(path, out);
}

}  // namespace

RunLog::RunLog(const std::string& folder, int64_t step, int64_t epoch, std::vector<std::string> step_columns)
    : folder_(folder) {
  const std::string steps = folder + "/steps.csv";
  truncate_csv(steps, step);
  truncate_csv(folder + "/metrics.csv", epoch);
  truncate_jsonl(folder + "/metrics.jsonl", epoch);
  const bool fresh = !fs::exists(steps) || fs::file_size(steps) == 0;
  steps_.open(steps, std::ios::app);
  if (!steps_) throw std::runtime_error("cannot write " + steps);
  if (fresh) {
    for (size_t i = 0; i < step_columns.size(); ++i) steps_ << (i ? "," : "") << step_columns[i];
    steps_ << "\n";
  }
}

void RunLog::step(const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) steps_ << (i ? "," : "") << values[i];
  steps_ << "\n";
}

void RunLog::epoch(const json& metrics) {
  flush();
  // metrics.jsonl: one JSON object per epoch; metrics.csv: the scalar columns of the first row written.
  const std::string jsonl = folder_ + "/metrics.jsonl";
  std::string text = fs::exists(jsonl) ? util::read_text(jsonl) : "";
  util::atomic_write(jsonl, text + metrics.dump() + "\n");
  const std::string csv = folder_ + "/metrics.csv";
  std::string table = fs::exists(csv) ? util::read_text(csv) : "";
  if (table.empty()) {
    metric_columns_.clear();
    for (const auto& [k, v] : metrics.items()) {
      if (v.is_number() || v.is_string()) metric_columns_.push_back(k);
    }
    std::sort(metric_columns_.begin(), metric_columns_.end(),
              [](const std::string& a, const std::string& b) { return (a == "epoch") > (b == "epoch") || (a != "epoch" && b != "epoch" && a < b); });
    for (size_t i = 0; i < metric_columns_.size(); ++i) table += (i ? "," : "") + metric_columns_[i];
    table += "\n";
  } else if (metric_columns_.empty()) {
    std::istringstream head(table.substr(0, table.find('\n')));
    for (std::string c; std::getline(head, c, ',');) metric_columns_.push_back(c);
  }
  for (size_t i = 0; i < metric_columns_.size(); ++i) {
    const json v = metrics.value(metric_columns_[i], json());
    table += (i ? "," : "") + (v.is_number() ? format_number(v.get<double>()) : v.is_string() ? v.get<std::string>() : "");
  }
  util::atomic_write(csv, table + "\n");
}

void RunLog::flush() { steps_.flush(); }

void CheckpointPacer::save(const std::function<void()>& write) {
  const auto t0 = std::chrono::steady_clock::now();
  write();
  save_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  since_save_ = 0;
}

KnnSets cap_knn_sets(const std::vector<int>& memory, const std::vector<int>& query, int max_images) {
  auto spaced = [](const std::vector<int>& v, size_t n) {
    if (v.size() <= n) return v;
    std::vector<int> out;
    for (size_t k = 0; k < n; ++k) out.push_back(v[k * v.size() / n]);
    return out;
  };
  const size_t total = static_cast<size_t>(std::max(4, max_images));
  return {spaced(memory, total * 3 / 4), spaced(query, total - total * 3 / 4)};
}

void require_same_run(const nlohmann::json& config, const std::vector<std::string>& keys, size_t training_images) {
  dist::Group* group = dist::group();
  if (!group) return;
  for (const std::string& key : keys)
    if (config.contains(key)) group->require_same("--" + key, config[key].dump());
  group->require_same("training images", std::to_string(training_images));
}

torch::Tensor infer(const data::PixelSource& pixels, const std::vector<int>& items, const InferenceInput& in,
                    const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  dist::Group* group = dist::group();
  const int64_t n = static_cast<int64_t>(items.size());
  if (in.shard && group && n >= group->size()) {
    const int64_t w = group->size(), r = group->rank();
    std::vector<int> mine;
    for (int64_t k = r; k < n; k += w) mine.push_back(items[static_cast<size_t>(k)]);
    InferenceInput local = in;
    local.shard = false;
    torch::Tensor part = infer(pixels, mine, local, fn);
    if (part.size(0) != static_cast<int64_t>(mine.size()))
      throw std::runtime_error("sharded inference: unreadable images among the items (filter them first)");
    const int64_t per = (n + w - 1) / w;  // rows per rank, padded
    if (part.size(0) < per) part = torch::cat({part, torch::zeros({per - part.size(0), part.size(1)}, part.options())});
    std::vector<torch::Tensor> all = group->all_gather(part.to(group->collective_device()).contiguous());
    for (torch::Tensor& a : all) a = a.cpu();
    torch::Tensor out = torch::empty({n, part.size(1)}, part.options());
    for (int64_t k = 0; k < n; ++k) out[k].copy_(all[static_cast<size_t>(k % w)][k / w]);
    return out;
  }
  data::LoaderOptions lo;
  lo.batch_size = in.batch_size;
  lo.views = 1;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.workers = 1;
  lo.augment = data::AugmentOptions::none(in.out_size);
  lo.mean = in.mean;
  lo.std = in.stdev;
  data::BatchLoader loader(pixels, items, {}, lo);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    torch::Tensor x = batch->views[0].to(in.device);
    if (in.channels_last) x = util::channels_last(x);
    const util::AutocastGuard autocast(in.bf16, in.device.type());
    parts.push_back(fn(x).to(torch::kFloat).cpu());
  }
  return torch::cat(parts, 0);
}

torch::Tensor embed(models::ResNet18Impl& backbone, const data::PixelSource& pixels, const std::vector<int>& items,
                    const InferenceInput& in) {
  backbone.eval();
  namespace F = torch::nn::functional;
  return F::normalize(infer(pixels, items, in, [&](const torch::Tensor& x) { return backbone.features(x); }),
                      F::NormalizeFuncOptions().dim(1));
}

KnnResult knn_monitor(models::ResNet18Impl& backbone, const data::PixelSource& pixels, const std::vector<int>& memory,
                      const std::vector<int>& query, const std::vector<int>& labels, int k, const InferenceInput& in) {
  std::vector<int> mem_ok, query_ok;
  for (int i : memory) {
    if (pixels.ok(i) && labels[i] >= 0) mem_ok.push_back(i);
  }
  for (int i : query) {
    if (pixels.ok(i) && labels[i] >= 0) query_ok.push_back(i);
  }
  if (mem_ok.empty() || query_ok.empty()) return {};
  const torch::Tensor m = embed(backbone, pixels, mem_ok, in);
  const torch::Tensor q = embed(backbone, pixels, query_ok, in);
  std::vector<int64_t> ml;
  int num_classes = 0;
  for (int i : mem_ok) {
    ml.push_back(labels[i]);
    num_classes = std::max(num_classes, labels[i] + 1);
  }
  for (int i : query_ok) num_classes = std::max(num_classes, labels[i] + 1);
  const torch::Tensor mem_labels = torch::tensor(ml, torch::kLong);
  const int64_t kk = std::min<int64_t>(k, m.size(0));
  const auto [sims, idx] = torch::matmul(q, m.t()).topk(kk, 1);  // [Q, k]
  const torch::Tensor votes = torch::zeros({q.size(0), num_classes}).scatter_add_(1, mem_labels.index({idx}), (sims / 0.07).exp());
  const torch::Tensor pred = votes.argmax(1);
  int64_t correct = 0;
  const auto* p = pred.data_ptr<int64_t>();
  std::vector<int> query_labels;
  for (size_t i = 0; i < query_ok.size(); ++i) {
    correct += p[i] == labels[query_ok[i]];
    query_labels.push_back(labels[query_ok[i]]);
  }
  KnnResult r;
  r.accuracy = static_cast<double>(correct) / static_cast<double>(query_ok.size());
  if (num_classes == 2) {
    const torch::Tensor share = (votes.select(1, 1) / votes.sum(1)).to(torch::kDouble).contiguous();
    try {
      r.auroc = metrics::auroc(query_labels, std::vector<double>(share.data_ptr<double>(), share.data_ptr<double>() + share.numel()));
    } catch (const std::exception&) {
      // one class among the queries: no AUROC
    }
  }
  return r;
}

}  // namespace wristssl::train
