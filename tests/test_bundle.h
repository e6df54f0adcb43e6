#pragma once
// A model bundle of a randomly initialised classifier, with random batch-norm statistics (so that
// folding them matters), for tests of the bundle, predict and the exports.

#include <cstdint>
#include <string>

#include "wristssl/models/bundle.h"

namespace wristssl::testing {

/// Decision rule: temperature 1.5, calibrated threshold sigmoid(0.2 / 1.5), refer band +-0.3 around it
/// on the calibrated log-odds scale.
models::Bundle random_bundle(int image_size, int input_size, uint64_t seed, const std::string& name = "untrained-test");

}  // namespace wristssl::testing
