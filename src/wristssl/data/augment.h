#pragma once
// Augmentations for contrastive views and classifier training, on one grey image at a time (torch-free,
// so loader threads run them without touching LibTorch). All geometric steps (random resized crop,
// rotation, translation, flips) are folded into one affine map and one bilinear resampling pass.

#include <cstdint>
#include <string>
#include <vector>

#include "wristssl/data/boxes.h"

namespace wristssl::data {

struct AugmentOptions {
  int out_size = 224;               // output side in pixels
  double crop_scale_min = 0.35;     // random resized crop: area fraction of the source
  double crop_scale_max = 1.0;
  double crop_ratio_min = 3.0 / 4;  // aspect ratio range of the crop
  double crop_ratio_max = 4.0 / 3;
  double rotation_deg = 20;         // uniform in [-r, r]
  double translate = 0.1;           // fraction of the side, uniform in [-t, t] per axis
  double hflip_p = 0.5;
  double vflip_p = 0.0;
  double brightness = 0.3;          // additive, uniform in [-b, b]
  double contrast = 0.3;            // multiplicative around the mean, uniform in [1-c, 1+c]
  double gamma_min = 0.7, gamma_max = 1.4;
  double blur_p = 0.3;              // Gaussian blur probability
  double blur_sigma_max = 1.5;      // in output pixels, sigma uniform in [0.1, max]
  double noise_p = 0.3;             // additive Gaussian noise probability
  double noise_std = 0.02;
  // Native-scale crops (fine pixels): when > 0, the crop's side is out_size x uniform(min, max)
  // source pixels (about one source pixel per output pixel) instead of an area fraction.
  double pixel_scale_min = 0, pixel_scale_max = 0;

  /// No augmentation: the whole image resized to out_size (evaluation).
  static AugmentOptions none(int out_size);
  /// The paper's set: rotation, translation, flips, brightness (no crop, blur, noise).
  static AugmentOptions paper(int out_size);
  /// SimCLR for radiographs: crop, rotation, translation, flips, brightness / contrast / gamma, blur,
  /// noise; no colour jitter (radiographs are grey). The default.
  static AugmentOptions xray(int out_size);
  /// xray without blur and noise (the study measures whether they help).
  static AugmentOptions xray_clean(int out_size);
  /// Light augmentation for supervised training of the classifier.
  static AugmentOptions classifier(int out_size);
  /// By name: "none", "paper", "xray", "xray-clean", "classifier"; throws on other names.
  static AugmentOptions preset(const std::string& name, int out_size);
};

/// Where a crop must fall. With boxes, the crop holds one of them (drawn by the seed), its centre
/// at least 15% of the crop's side inside every edge where the box fits; without boxes and with
/// bone_candidates > 0, the crop is the brightest (most bone, least background) of that many
/// random positions. `mask`, when given ([out_size, out_size]), receives 1 where the output pixel
/// lies in any of the boxes, else 0.
struct CropGuide {
  const std::vector<Box>* boxes = nullptr;
  int bone_candidates = 0;
  float* mask = nullptr;
};

/// Writes one augmented view of `src` ([size, size], 0..65535) into `dst` ([out_size, out_size], [0, 1]).
/// The view depends only on `seed`: same seed, same view, on any thread.
void augment_view(const uint16_t* src, int size, float* dst, const AugmentOptions& options, uint64_t seed);
/// The same, with the crop placed as `guide` says.
void augment_view(const uint16_t* src, int size, float* dst, const AugmentOptions& options,
                  uint64_t seed, const CropGuide& guide);

/// A well-mixed 64-bit seed from several parts (splitmix64 chain): seed, epoch, image, view.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0);

}  // namespace wristssl::data
