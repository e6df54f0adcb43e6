#pragma once
// Making a binary model's score a probability a clinician can read, and knowing when it is unsure:
// temperature scaling (Guo et al. 2017) fitted on validation, and a "refer" band around the
// operating threshold, also chosen on validation. Both act on the logit margin m = z_fracture -
// z_no_fracture, so they are monotone: the calibrated threshold moves with the scores and no
// decision changes.

#include <cstdint>
#include <string>
#include <vector>

namespace wristssl::metrics {

/// A probability as every output writes it (predict's CSV, the DICOM report): six decimals.
std::string format_probability(double p);

/// 1 / (1 + exp(-x)), stable for large |x|.
double sigmoid(double x);
/// log(p / (1 - p)); +-inf at 1 and 0.
double logit(double p);

/// The temperature T > 0 minimising the negative log-likelihood of `labels` (0/1) under
/// p = sigmoid(margin / T). Throws std::invalid_argument on empty or mismatched input or one class
/// only.
double fit_temperature(const std::vector<double>& margins, const std::vector<int>& labels);

/// Mean negative log-likelihood of `labels` under p = sigmoid(margin / temperature).
double binary_nll(const std::vector<double>& margins, const std::vector<int>& labels,
                  double temperature);

/// The refer band: images whose calibrated probability p satisfies lo <= p < hi get the decision
/// "refer" (a radiologist must look) rather than a guess.
struct ReferBand {
  double lo = 0.5, hi = 0.5;  // calibrated probabilities, lo <= threshold <= hi
  double fraction = 0.0;      // the share of validation images asked to fall inside
  int64_t images = 0;         // validation images it was chosen on
  int64_t inside = 0;         // of those, how many fall inside
};

/// The band symmetric in calibrated logit space around `threshold_margin / temperature` that holds
/// the `fraction` of `margins` nearest to the threshold (fraction 0: an empty band at the
/// threshold).
ReferBand choose_refer_band(const std::vector<double>& margins, double threshold_margin,
                            double temperature, double fraction);

/// "fracture", "no_fracture" or "refer" for a calibrated probability.
const char* decide(double probability, double threshold, const ReferBand& band);

}  // namespace wristssl::metrics
