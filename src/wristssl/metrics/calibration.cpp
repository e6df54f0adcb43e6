#include "wristssl/metrics/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

namespace wristssl::metrics {

std::string format_probability(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", p);
  return buf;
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double logit(double p) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  return std::log(p) - std::log1p(-p);
}

double binary_nll(const std::vector<double>& margins, const std::vector<int>& labels,
                  double temperature) {
  double sum = 0;
  for (size_t i = 0; i < margins.size(); ++i) {
    // -log sigmoid(s * x) = softplus(-s * x), with s = +1 for a positive, -1 for a negative.
    const double x = (labels[i] == 1 ? 1.0 : -1.0) * margins[i] / temperature;
    sum += x > 0 ? std::log1p(std::exp(-x)) : -x + std::log1p(std::exp(x));
  }
  return sum / static_cast<double>(margins.size());
}

double fit_temperature(const std::vector<double>& margins, const std::vector<int>& labels) {
  if (margins.empty() || margins.size() != labels.size()) {
    throw std::invalid_argument("fit_temperature: " + std::to_string(margins.size()) +
                                " margins and " + std::to_string(labels.size()) + " labels");
  }
  bool pos = false, neg = false;
  for (int y : labels) (y == 1 ? pos : neg) = true;
  if (!pos || !neg) throw std::invalid_argument("fit_temperature: the labels hold one class only");
  // The NLL is convex in a = 1/T (logistic regression on one feature without intercept), so it is
  // unimodal in log a: golden-section search over a in [1e-3, 1e3].
  auto f = [&](double log_a) { return binary_nll(margins, labels, std::exp(-log_a)); };
  double lo = std::log(1e-3), hi = std::log(1e3);
  const double g = (std::sqrt(5.0) - 1) / 2;
  double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo), f1 = f(x1), f2 = f(x2);
  for (int it = 0; it < 200 && hi - lo > 1e-10; ++it) {
    if (f1 < f2) {
      hi = x2, x2 = x1, f2 = f1;
      x1 = hi - g * (hi - lo), f1 = f(x1);
    } else {
      lo = x1, x1 = x2, f1 = f2;
      x2 = lo + g * (hi - lo), f2 = f(x2);
    }
  }
  return std::exp(-(lo + hi) / 2);
}

ReferBand choose_refer_band(const std::vector<double>& margins, double threshold_margin,
                            double temperature, double fraction) {
  if (!(fraction >= 0 && fraction < 1))
    throw std::invalid_argument("refer fraction must be in [0, 1)");
  if (!(temperature > 0)) throw std::invalid_argument("temperature must be > 0");
  ReferBand band;
  band.fraction = fraction;
  band.images = static_cast<int64_t>(margins.size());
  const double centre = threshold_margin / temperature;
  band.lo = band.hi = sigmoid(centre);
  const auto k = static_cast<size_t>(std::ceil(fraction * static_cast<double>(margins.size())));
  if (k == 0 || margins.empty()) return band;
  std::vector<double> d;
  for (double m : margins) d.push_back(std::fabs(m / temperature - centre));
  std::vector<double> sorted = d;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   sorted.end());
  const double half = sorted[k - 1];
  // Symmetric in log-odds, then widened to hold the k nearest exactly as their probabilities are
  // computed (sigmoid rounds), with hi just above the largest (the band is [lo, hi)).
  band.lo = sigmoid(centre - half);
  band.hi = sigmoid(centre + half);
  for (size_t i = 0; i < margins.size(); ++i) {
    if (d[i] <= half) {
      const double p = sigmoid(margins[i] / temperature);
      band.lo = std::min(band.lo, p);
      band.hi = std::max(band.hi, p);
    }
  }
  band.hi = std::nextafter(band.hi, 2.0);
  for (double m : margins) {
    const double p = sigmoid(m / temperature);
    band.inside += p >= band.lo && p < band.hi;
  }
  return band;
}

const char* decide(double probability, double threshold, const ReferBand& band) {
  if (probability >= band.lo && probability < band.hi) return "refer";
  return probability >= threshold ? "fracture" : "no_fracture";
}

}  // namespace wristssl::metrics
