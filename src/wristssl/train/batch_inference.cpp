#include "wristssl/train/batch_inference.h"

#include "wristssl/data/loader.h"
#include "wristssl/distributed/group.h"
#include "wristssl/util/autocast.h"
#include "wristssl/util/memory_format.h"

namespace wristssl::train {

torch::Tensor infer(const data::PixelSource& pixels, const std::vector<int>& items,
                    const InferenceInput& in,
                    const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  distributed::Group* group = distributed::group();
  const int64_t n = static_cast<int64_t>(items.size());
  if (in.shard && group && n >= group->size()) {
    const int64_t w = group->size(), r = group->rank();
    std::vector<int> mine;
    for (int64_t k = r; k < n; k += w) mine.push_back(items[static_cast<size_t>(k)]);
    InferenceInput local = in;
    local.shard = false;
    torch::Tensor part = infer(pixels, mine, local, fn);
    if (part.size(0) != static_cast<int64_t>(mine.size()))
      throw std::runtime_error(
          "sharded inference: unreadable images among the items (filter them first)");
    const int64_t per = (n + w - 1) / w;  // rows per rank, padded
    if (part.size(0) < per)
      part = torch::cat({part, torch::zeros({per - part.size(0), part.size(1)}, part.options())});
    std::vector<torch::Tensor> all =
        group->all_gather(part.to(group->collective_device()).contiguous());
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

}  // namespace wristssl::train
