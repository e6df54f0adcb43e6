#include "test_bundle.h"

#include <torch/torch.h>

#include "wristssl/metrics/calibration.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/run_bundle.h"

namespace wristssl::testing {

models::Bundle random_bundle(int image_size, int input_size, uint64_t seed, const std::string& name) {
  torch::manual_seed(seed);
  models::Classifier model(2);
  {
    torch::NoGradGuard no_grad;
    for (auto& b : model->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    }
    for (auto& p : model->named_parameters()) {
      if (p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos) {
        p.value().uniform_(p.key().find("weight") != std::string::npos ? 0.5 : -0.1,
                           p.key().find("weight") != std::string::npos ? 1.5 : 0.1);
      }
    }
  }
  train::BundleInfo info;
  info.name = name;
  info.image_size = image_size;
  info.input_size = input_size;
  info.mean = 0.45f;
  info.stdev = 0.22f;
  const double t = 1.5, centre = 0.2 / t;
  info.decision = {{"threshold", metrics::sigmoid(centre)},
                   {"threshold_raw", metrics::sigmoid(0.2)},
                   {"threshold_margin", 0.2},
                   {"rule", "youden"},
                   {"chosen_on", "validation"},
                   {"calibration", {{"method", "temperature"}, {"temperature", t}, {"images", 0}}},
                   {"refer_band", {{"lo", metrics::sigmoid(centre - 0.3)}, {"hi", metrics::sigmoid(centre + 0.3)}, {"fraction", 0.1}}}};
  return train::make_bundle(*model, info);
}

}  // namespace wristssl::testing
