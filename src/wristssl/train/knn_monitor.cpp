#include "wristssl/train/knn_monitor.h"

#include <algorithm>

#include "wristssl/metrics/binary_metrics.h"

namespace wristssl::train {

KnnSets cap_knn_sets(const std::vector<int>& memory, const std::vector<int>& query,
                     int max_images) {
  auto spaced = [](const std::vector<int>& v, size_t n) {
    if (v.size() <= n) return v;
    std::vector<int> out;
    for (size_t k = 0; k < n; ++k) out.push_back(v[k * v.size() / n]);
    return out;
  };
  const size_t total = static_cast<size_t>(std::max(4, max_images));
  return {spaced(memory, total * 3 / 4), spaced(query, total - total * 3 / 4)};
}

torch::Tensor embed(models::ResNet18Impl& backbone, const data::PixelSource& pixels,
                    const std::vector<int>& items, const InferenceInput& in) {
  backbone.eval();
  namespace F = torch::nn::functional;
  return F::normalize(
      infer(pixels, items, in, [&](const torch::Tensor& x) { return backbone.features(x); }),
      F::NormalizeFuncOptions().dim(1));
}

KnnResult knn_monitor(models::ResNet18Impl& backbone, const data::PixelSource& pixels,
                      const std::vector<int>& memory, const std::vector<int>& query,
                      const std::vector<int>& labels, int k, const InferenceInput& in) {
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
  const torch::Tensor votes = torch::zeros({q.size(0), num_classes})
                                  .scatter_add_(1, mem_labels.index({idx}), (sims / 0.07).exp());
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
      r.auroc = metrics::auroc(
          query_labels,
          std::vector<double>(share.data_ptr<double>(), share.data_ptr<double>() + share.numel()));
    } catch (const std::exception&) {
      // one class among the queries: no AUROC
    }
  }
  return r;
}

}  // namespace wristssl::train
