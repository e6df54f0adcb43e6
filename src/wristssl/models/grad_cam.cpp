#include "wristssl/models/grad_cam.h"

#include <torch/autograd.h>
#include <torch/nn/functional/upsampling.h>

#include "wristssl/util/autocast.h"

namespace wristssl::models {

GradCamResult grad_cam(ClassifierImpl& model, const torch::Tensor& x, int64_t positive,
                       int64_t negative) {
  TORCH_CHECK(x.dim() == 4, "grad_cam expects [N, 1, H, W], got ", x.sizes());
  torch::Tensor a;  // [N, 512, h, w] the last block's activations
  {
    torch::NoGradGuard no_grad;
    a = model.backbone->feature_map(x);
  }
  return grad_cam_from_features(model, a, x.size(2), x.size(3), positive, negative);
}

GradCamResult grad_cam_from_features(ClassifierImpl& model, const torch::Tensor& features,
                                     int64_t height, int64_t width, int64_t positive,
                                     int64_t negative) {
  TORCH_CHECK(features.dim() == 4, "grad_cam expects features [N, C, h, w], got ",
              features.sizes());
  TORCH_CHECK(positive < model.num_classes && negative < model.num_classes && positive != negative,
              "grad_cam: classes ", positive, " and ", negative, " of ", model.num_classes);
  // The backbone ran under the caller's autocast (bf16 where asked); the map itself is computed in
  // fp32.
  const torch::Tensor a = features.detach().to(torch::kFloat).contiguous().requires_grad_(true);
  const util::AutocastGuard fp32(false, a.device().type());
  torch::AutoGradMode grad_on(true);
  const torch::Tensor logits = model.logits_from_map(a).to(torch::kFloat);               // [N, C]
  const torch::Tensor margin = logits.select(1, positive) - logits.select(1, negative);  // [N]
  // Samples are independent, so the gradient of the sum is each sample's own gradient.
  const torch::Tensor g = torch::autograd::grad({margin.sum()}, {a})[0];  // [N, 512, h, w]
  torch::Tensor cam;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor w = g.mean({2, 3}, /*keepdim=*/true);  // [N, 512, 1, 1]
    cam = torch::relu((w * a).sum(1, /*keepdim=*/true));       // [N, 1, h, w]
    namespace F = torch::nn::functional;
    cam = F::interpolate(cam, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{height, width})
                                  .mode(torch::kBilinear)
                                  .align_corners(false))
              .squeeze(1);  // [N, H, W]
    const torch::Tensor peak = std::get<0>(cam.flatten(1).max(1)).clamp_min(1e-12).view({-1, 1, 1});
    cam = (cam / peak).clamp(0, 1);
  }
  return {cam.detach().cpu().contiguous(), margin.detach().cpu(), logits.detach().cpu()};
}

}  // namespace wristssl::models
