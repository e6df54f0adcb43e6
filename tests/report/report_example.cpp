// Writes an example report from synthetic but realistic inputs: a fracture classifier evaluated on
// a held-out test set with patient-level bootstrap, a threshold frozen on validation, SimCLR
// pretraining and classifier histories, and galleries of synthetic wrist-like thumbnails. Used by
// the Chromium render test and for the README screenshot.
// Usage: report_example OUT.html [--screenshot | --sparse | --external]
//   --screenshot  one gallery row each, for a tidy image
//   --sparse      what a thin run leaves: no pretraining, one epoch, no calibration, no galleries,
//                 no calibration fit or referral band
//   --external    the same figures, worded as an external evaluation (threshold from the bundle)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "wristssl/io/read_image.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/report/heatmap.h"
#include "wristssl/report/html_report.h"
#include "wristssl/report/png_thumb.h"

namespace {

namespace metrics = wristssl::metrics;
namespace report = wristssl::report;

struct Split {
  std::vector<int> labels;
  std::vector<double> scores;
  std::vector<std::string> groups;
  std::vector<std::string> paths;
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Patients with 1-3 views each; a patient's views share the label and part of the model's evidence.
Split make_split(const std::string& name, int patients, double prevalence, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_int_distribution<int> views(1, 3);
  Split s;
  for (int p = 0; p < patients; ++p) {
    const int label = u(rng) < prevalence ? 1 : 0;
    const double patient_effect = 0.9 * noise(rng);
    char id[32];
    std::snprintf(id, sizeof(id), "P%05d", 10000 + p * 7 + static_cast<int>(name.size()));
    const int k = views(rng);
    for (int v = 0; v < k; ++v) {
      const double logit = (label ? 1.55 : -1.95) + patient_effect + 1.05 * noise(rng);
      s.labels.push_back(label);
      s.scores.push_back(sigmoid(1.15 * logit));  // a little overconfident, as networks tend to be
      s.groups.push_back(id);
      s.paths.push_back("wrist_xr/" + name + "/" + id + "/study1_" +
                        (label ? "positive" : "negative") + "/image" + std::to_string(v + 1) +
                        ".png");
    }
  }
  return s;
}

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3.0 - 2.0 * t);
}

// Bone seen in projection: bright cortex at the rim, dimmer marrow, a soft edge. d = distance from
// the axis, w = half-width (both in image units).
double bone_profile(double d, double w) {
  if (d >= w + 0.01) return 0.0;
  const double r = std::min(1.0, d / w);
  return (0.50 + 0.32 * std::pow(r, 4)) * smoothstep(w + 0.01, w - 0.004, d);
}

// A wrist-like grey radiograph (PA view): soft tissue, radius and ulna from below, two rows of
// carpal bones, metacarpal bases above; for a fracture a dark oblique line across the distal
// radius.
std::vector<float> synthetic_radiograph(int size, bool fracture, std::mt19937_64& rng) {
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double tilt = 0.10 * u(rng), shift = 0.04 * u(rng), gain = 1.0 + 0.08 * u(rng);
  const double crack_y = 0.60 + 0.04 * u(rng), crack_slope = 0.45 + 0.25 * u(rng);
  struct Blob {
    double x, y, rx, ry;
  };
  std::vector<Blob> carpals = {{-0.17, 0.44, 0.060, 0.050}, {-0.06, 0.45, 0.055, 0.048},
                               {0.04, 0.44, 0.050, 0.046},  {0.12, 0.42, 0.040, 0.040},
                               {-0.16, 0.33, 0.050, 0.045}, {-0.07, 0.32, 0.048, 0.046},
                               {0.02, 0.32, 0.048, 0.050},  {0.11, 0.33, 0.052, 0.050}};
  for (Blob& c : carpals) {
    c.x += 0.006 * u(rng);
    c.y += 0.006 * u(rng);
  }
  std::vector<float> img(static_cast<size_t>(size) * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double fy = (y + 0.5) / size, fx0 = (x + 0.5) / size - 0.5 - shift;
      const double fx = fx0 - tilt * (fy - 0.5);
      double v = 0.05;
      const double half_tissue =
          0.30 + 0.05 * smoothstep(0.6, 0.3, fy);  // the hand is wider than the forearm
      v += 0.17 * smoothstep(half_tissue + 0.03, half_tissue - 0.03, std::fabs(fx));
      double b = 0.0;
      // Radius: flares toward the wrist, rounded distal end.
      const double radius_w = 0.065 + 0.055 * smoothstep(0.78, 0.52, fy);
      if (fy > 0.50)
        b = std::max(b, bone_profile(std::fabs(fx + 0.085), radius_w) * smoothstep(0.50, 0.53, fy));
      // Ulna: narrower, its head ends a little lower.
      if (fy > 0.53)
        b = std::max(
            b, 0.93 *
                   bone_profile(std::fabs(fx - 0.135), 0.042 + 0.01 * smoothstep(0.7, 0.55, fy)) *
                   smoothstep(0.53, 0.56, fy));
      for (const Blob& c : carpals) {
        const double d = std::hypot((fx - c.x) / c.rx, (fy - c.y) / c.ry);
        b = std::max(b, (0.48 + 0.25 * d * d * d * d) * smoothstep(1.05, 0.92, d));
      }
      for (int m = 0; m < 4; ++m) {  // metacarpal bases, fanning out
        const double axis = -0.17 + 0.10 * m + (m - 1.5) * 0.12 * (0.25 - fy);
        if (fy < 0.27)
          b = std::max(b, bone_profile(std::fabs(fx - axis), 0.032) * smoothstep(0.27, 0.24, fy));
      }
      if (fracture) {
        const double line =
            (fy - crack_y) - crack_slope * (fx + 0.085) + 0.006 * std::sin(fx * 90.0);
        if (std::fabs(fx + 0.085) < radius_w)
          b *= 0.35 + 0.65 * smoothstep(0.0, 0.009, std::fabs(line));
      }
      v = std::max(v, v * 0.4 + b);
      v = gain * v + 0.02 * noise(rng);
      img[static_cast<size_t>(y) * size + x] = static_cast<float>(std::clamp(v, 0.0, 1.0));
    }
  }
  return img;
}

// A Grad-CAM-like map: a soft blob where the model "looked" (the distal radius for a fracture, the
// carpals for a false alarm), with a weaker second blob, then the overlay as a base64 PNG.
std::string synthetic_cam_overlay(const std::vector<float>& grey, int size, bool fracture,
                                  std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double cx = (fracture ? 0.42 : 0.47) + 0.03 * u(rng),
               cy = (fracture ? 0.60 : 0.40) + 0.03 * u(rng);
  std::vector<float> cam(static_cast<size_t>(size) * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double fx = (x + 0.5) / size, fy = (y + 0.5) / size;
      const double main =
          std::exp(-(std::pow(fx - cx, 2) + std::pow(fy - cy, 2)) / (2 * 0.07 * 0.07));
      const double side =
          0.45 * std::exp(-(std::pow(fx - 0.62, 2) + std::pow(fy - 0.70, 2)) / (2 * 0.05 * 0.05));
      cam[static_cast<size_t>(y) * size + x] = static_cast<float>(std::min(1.0, main + side));
    }
  }
  const report::Overlay o = report::overlay_heatmap(grey, cam, size, size);
  return report::base64_encode(wristssl::io::encode_rgb_png(o.rgb, o.width, o.height));
}

std::vector<report::GalleryItem> most_confident_errors(const Split& s, double threshold,
                                                       int want_label, size_t count,
                                                       std::mt19937_64& rng) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < s.labels.size(); ++i) {
    const bool predicted = s.scores[i] >= threshold;
    if (s.labels[i] == want_label && predicted != (want_label == 1)) idx.push_back(i);
  }
  // Missed fractures: lowest scores first; false alarms: highest first.
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return want_label == 1 ? s.scores[a] < s.scores[b] : s.scores[a] > s.scores[b];
  });
  if (idx.size() > count) idx.resize(count);
  std::vector<report::GalleryItem> out;
  for (size_t k = 0; k < idx.size(); ++k) {
    const size_t i = idx[k];
    constexpr int kSize = 112;
    const std::vector<float> grey = synthetic_radiograph(kSize, s.labels[i] == 1, rng);
    // Grad-CAM for the first few of each gallery, as the evaluate command makes for its galleries.
    out.push_back({s.paths[i], s.labels[i], s.scores[i], report::png8_base64(grey, kSize, kSize),
                   k < 4 ? synthetic_cam_overlay(grey, kSize, s.labels[i] == 1, rng) : ""});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.html [--screenshot | --sparse | --external]\n", argv[0]);
    return 2;
  }
  const std::string out_path = argv[1];
  const std::string mode = argc > 2 ? argv[2] : "";
  if (!mode.empty() && mode != "--screenshot" && mode != "--sparse" && mode != "--external") {
    std::fprintf(stderr, "report_example: unknown option '%s'\n", mode.c_str());
    return 2;
  }
  const bool screenshot = mode == "--screenshot";
  try {
    std::mt19937_64 rng(20240611);
    const Split val = make_split("valid", 110, 0.38, rng);
    const Split test = make_split("test", 190, 0.36, rng);

    metrics::ThresholdRule rule;  // Youden on validation
    const double threshold = metrics::select_threshold(val.labels, val.scores, rule);

    metrics::ReportOptions vopt;
    vopt.threshold = threshold;
    vopt.threshold_source = "youden on this validation set";
    vopt.bootstrap = 1000;
    vopt.seed = 1;
    vopt.rule = rule;
    const metrics::MetricsReport val_report =
        metrics::compute_report(val.labels, val.scores, val.groups, vopt);

    metrics::ReportOptions topt = vopt;
    topt.threshold_source = "frozen: youden on validation";
    topt.bootstrap = 2000;
    const metrics::MetricsReport test_report =
        metrics::compute_report(test.labels, test.scores, test.groups, topt);

    report::ReportInputs in;
    in.title = "wristssl: fracture detection report";
    in.test_metrics = test_report.to_json();
    in.val_metrics = val_report.to_json();
    in.threshold_rule = metrics::threshold_rule_name(rule);
    in.group_name = "patients";
    in.model_description =
        "model.wristssl (example) sha256 3f9a41c2...; ResNet-18, SimCLR-pretrained, trained on the "
        "synthetic training split";

    // Temperature scaling fitted on validation (the T of least log loss, on a grid), with the ECE
    // before and after, as the evaluate command reports it.
    auto scaled = [&](double t) {
      std::vector<double> out;
      for (double p : val.scores) out.push_back(sigmoid(std::log(p / (1 - p)) / t));
      return out;
    };
    auto log_loss = [&](const std::vector<double>& p) {
      double sum = 0;
      for (size_t i = 0; i < p.size(); ++i) {
        const double q = std::clamp(p[i], 1e-12, 1 - 1e-12);
        sum -= val.labels[i] ? std::log(q) : std::log(1 - q);
      }
      return sum;
    };
    double temperature = 1.0;
    for (double t = 0.5; t <= 3.0; t += 0.01) {
      if (log_loss(scaled(t)) < log_loss(scaled(temperature))) temperature = t;
    }
    const std::vector<double> val_calibrated = scaled(temperature);
    in.calibration = {
        {"method", "temperature"},
        {"temperature", temperature},
        {"ece_before", metrics::compute_calibration(val.labels, val.scores, 10).ece},
        {"ece_after", metrics::compute_calibration(val.labels, val_calibrated, 10).ece},
        {"fitted_on", "validation"},
        {"images", val.labels.size()}};

    // A "refer to a radiologist" band around the threshold; accuracy on the images outside it.
    const double refer_lo = std::max(0.0, threshold - 0.08),
                 refer_hi = std::min(1.0, threshold + 0.08);
    int64_t referred = 0, outside = 0, outside_right = 0;
    for (size_t i = 0; i < test.scores.size(); ++i) {
      if (test.scores[i] >= refer_lo && test.scores[i] < refer_hi) {
        ++referred;
      } else {
        ++outside;
        outside_right += (test.scores[i] >= threshold) == (test.labels[i] == 1);
      }
    }
    in.refer_band = {
        {"lo", refer_lo},
        {"hi", refer_hi},
        {"rule", "threshold \u00b1 0.08"},
        {"test_referred", referred},
        {"test_images", test.scores.size()},
        {"accuracy_outside", outside ? static_cast<double>(outside_right) / outside : 0.0}};

    std::normal_distribution<double> jitter(0.0, 1.0);
    for (int e = 1; e <= 25; ++e) {
      const bool probe = e <= 5;
      const double t = probe ? e / 5.0 : (e - 5) / 20.0;
      report::EpochRow r;
      r.epoch = e;
      r.phase = probe ? "probe" : "finetune";
      r.val_auroc =
          probe ? 0.80 + 0.06 * (1 - std::exp(-2.5 * t)) : 0.87 + 0.065 * (1 - std::exp(-4 * t));
      r.val_auroc += 0.004 * jitter(rng);
      r.val_accuracy = r.val_auroc - 0.07 + 0.006 * jitter(rng);
      r.train_loss = probe ? 0.62 - 0.1 * t : 0.50 * std::exp(-1.6 * t) + 0.12;
      r.val_loss = probe ? 0.60 - 0.08 * t : 0.40 * std::exp(-3.0 * t) + 0.12 + 0.05 * t * t;
      r.train_loss += 0.006 * jitter(rng);
      r.val_loss += 0.008 * jitter(rng);
      in.history.push_back(r);
    }
    for (int e = 1; e <= 100; ++e) {
      report::PretrainRow r;
      r.epoch = e;
      r.loss = 4.25 + 1.85 * std::exp(-e / 22.0) +
               0.02 * jitter(rng);  // NT-Xent, batch 256: log(511) ~ 6.24
      r.knn_accuracy = e % 10 == 0 ? 0.84 - 0.22 * std::exp(-e / 30.0) + 0.005 * jitter(rng)
                                   : std::numeric_limits<double>::quiet_NaN();
      in.pretrain.push_back(r);
    }
    const size_t per_gallery = screenshot ? 6 : 12;
    in.false_negatives = most_confident_errors(test, threshold, 1, per_gallery, rng);
    in.false_positives = most_confident_errors(test, threshold, 0, per_gallery, rng);

    in.run_info = {
        {"dataset", "synthetic wrist radiographs (example data, not real patients)"},
        {"splits", "train 2140 / validation " + std::to_string(val.labels.size()) + " / test " +
                       std::to_string(test.labels.size()) + " images, split by patient"},
        {"model",
         "ResNet-18, SimCLR pretrained (100 epochs, batch 256, tau 0.2), 5 probe + 20 fine-tune "
         "epochs"},
        {"input", "224 x 224 grey, per-image z-score"},
        {"seed", 20240611},
        {"date", "2024-06-11 14:32 UTC"},
        {"command",
         "wristssl evaluate --model runs/r18_simclr/best.pt --split test --threshold-from valid "
         "--rule youden --bootstrap 2000 --out runs/r18_simclr/report.html"},
    };
    in.disclaimer =
        "Research use only. This is not a medical device and has not been validated for clinical "
        "decisions; every image needs a qualified reader. The figures in this example come from "
        "synthetic data.";
    if (mode == "--external") in.evaluation_kind = "external evaluation";
    if (mode == "--sparse") {
      in.test_metrics["calibration"] = nullptr;
      in.pretrain.clear();
      in.history.resize(1);
      in.false_negatives.clear();
      in.false_positives.clear();
      in.val_metrics = nullptr;
      in.calibration = nullptr;
      in.refer_band = nullptr;
      in.model_description.clear();
    }
    report::write_report(out_path, in);
    std::printf("wrote %s (threshold %.4f, test n=%lld)\n", out_path.c_str(), threshold,
                static_cast<long long>(test_report.n));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "report_example: %s\n", e.what());
    return 1;
  }
}
