#pragma once
// Grad-CAM (Selvaraju et al. 2017): where the classifier looked. The class evidence is the fracture
// margin z_fracture - z_no_fracture (the log-odds the decision thresholds), taken at the last
// convolutional block (layer4), weighted by its spatially averaged gradient, rectified, upsampled
// to the input and scaled to [0, 1] per image.

#include <torch/types.h>

#include "wristssl/models/classifier.h"

namespace wristssl::models {

struct GradCamResult {
  torch::Tensor
      maps;  // [N, H, W] float32 in [0, 1] (all zeros where no location has positive evidence)
  torch::Tensor margins;  // [N] float32: z_positive - z_negative
  torch::Tensor logits;   // [N, num_classes] float32
};

/// Grad-CAM of `x` [N, 1, H, W] (preprocessed) for the margin of class `positive` over `negative`.
/// The model's mode (eval for inference) is the caller's choice; gradients flow only to the feature
/// map, never to the weights. The backbone runs under the caller's autocast, if any; the head and
/// the map in fp32.
GradCamResult grad_cam(ClassifierImpl& model, const torch::Tensor& x, int64_t positive = 1,
                       int64_t negative = 0);

/// The same from the last block's activations `a` [N, 512, h, w], however they were computed (the
/// eager backbone, or a compiled graph of it), for inputs of `height` x `width`.
GradCamResult grad_cam_from_features(ClassifierImpl& model, const torch::Tensor& a, int64_t height,
                                     int64_t width, int64_t positive = 1, int64_t negative = 0);

}  // namespace wristssl::models
