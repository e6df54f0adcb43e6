// The classifier's pooling (models::Pooling): log-sum-exp of the per-location fracture log-odds,
// checked against the same formula computed here in double from the margin map, and its limits
// (r -> 0: the mean's margin; r large: the maximum); the bundle keeps it; the predictor's frozen
// TorchScript graph (predict, serve, listen) scores exactly as the eager model (evaluate, the
// study).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "wristssl/data/split.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/classifier.h"
#include "wristssl/train/run_bundle.h"

namespace wristssl::models {
namespace {

// A classifier with random weights and batch-norm statistics (eval mode), so that the margin map
// varies across locations.
Classifier random_model(Pooling p, uint64_t seed) {
  models::Bundle b = train::untrained_bundle(64, 64, seed, "pooling-test", p);
  return classifier_from_bundle(b);
}

TEST(Pooling, LseIsTheLogMeanExpOfTheMarginMap) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({3, 1, 96, 128});
  Classifier m = random_model({"lse", 3.0}, 11);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = m->forward(x);
  const torch::Tensor map =
      m->margin_map(m->backbone->feature_map(x)).to(torch::kDouble);  // [3, 3, 4]
  ASSERT_EQ(map.sizes(), (std::vector<int64_t>{3, 3, 4}));
  for (int64_t i = 0; i < 3; ++i) {
    double sum = 0;
    const torch::Tensor v = map[i].flatten().contiguous();
    for (int64_t k = 0; k < v.numel(); ++k) sum += std::exp(3.0 * v.data_ptr<double>()[k]);
    const double want = std::log(sum / v.numel()) / 3.0;
    EXPECT_NEAR((logits[i][1] - logits[i][0]).item<double>(), want, 1e-4) << "image " << i;
  }
}

TEST(Pooling, MarginMapOfTheMeanIsTheMeansMargin) {
  // The mean model's margin is the average of its per-location margins (the head is linear).
  torch::manual_seed(6);
  const torch::Tensor x = torch::randn({2, 1, 64, 64});
  Classifier m = random_model({}, 12);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = m->forward(x);
  const torch::Tensor map = m->margin_map(m->backbone->feature_map(x));
  const torch::Tensor d = (logits.select(1, 1) - logits.select(1, 0)) - map.mean({1, 2});
  EXPECT_LT(d.abs().max().item<double>(), 1e-5);
}

TEST(Pooling, SharpnessRunsFromTheMeanToTheMaximum) {
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({2, 1, 96, 96});
  Classifier mean = random_model({}, 13);
  torch::NoGradGuard no_grad;
  const torch::Tensor f = mean->backbone->feature_map(x);
  const torch::Tensor map = mean->margin_map(f).flatten(1);
  const torch::Tensor lo = map.mean(1), hi = std::get<0>(map.max(1));
  ASSERT_GT((hi - lo).min().item<double>(), 1e-3);  // the map is not flat
  double previous = -1e9;
  for (double r : {0.01, 0.5, 2.0, 8.0, 100.0}) {
    mean->pooling = {"lse", r};
    const torch::Tensor l = mean->logits_from_map(f);
    const torch::Tensor margin = l.select(1, 1) - l.select(1, 0);
    EXPECT_TRUE((margin >= lo - 1e-5).all().item<bool>()) << r;
    EXPECT_TRUE((margin <= hi + 1e-5).all().item<bool>()) << r;
    if (r == 0.01) {
      // log mean exp(r m) / r = mean(m) + r var(m) / 2 + O(r^2): within r var(m) of the mean.
      const double var = map.var(1, /*unbiased=*/false).max().item<double>();
      EXPECT_LT((margin - lo).abs().max().item<double>(), 0.01 * var + 1e-4);
    }
    if (r == 100.0) {
      EXPECT_LT((hi - margin).max().item<double>(), std::log(map.size(1)) / 100 + 1e-4);
    }
    EXPECT_GT(margin[0].item<double>(), previous);  // rises with r
    previous = margin[0].item<double>();
  }
}

TEST(Pooling, TheBundleKeepsItAndRefusesAnUnknownKind) {
  models::Bundle b = train::untrained_bundle(64, 64, 14, "pooling-test", {"lse", 4.0});
  EXPECT_EQ(b.manifest["architecture"]["pooling"]["kind"], "lse");
  Classifier m = classifier_from_bundle(b);
  EXPECT_EQ(m->pooling, (Pooling{"lse", 4.0}));
  b.manifest["architecture"]["pooling"]["kind"] = "max";
  EXPECT_THROW(classifier_from_bundle(b), BundleError);
  b.manifest["architecture"].erase("pooling");  // bundles made before pooling existed: the mean
  EXPECT_EQ(classifier_from_bundle(b)->pooling, Pooling{});
}

TEST(Pooling, PredictorGraphScoresAsTheEagerModel) {
  // predict, serve and listen score through infer::Predictor's frozen TorchScript graph; evaluate
  // and the study through the eager model of the same bundle. Both must apply the same pooling.
  for (const Pooling& p : {Pooling{}, Pooling{"lse", 2.0}}) {
    models::Bundle b = train::untrained_bundle(96, 96, 15, "pooling-test", p);
    infer::Predictor predictor(b, {"fp32", 1, true});
    Classifier eager = classifier_from_bundle(b);
    torch::manual_seed(8);
    const torch::Tensor x = torch::randn({3, 1, 96, 96});
    const std::vector<infer::Prediction> got = predictor.predict(x);
    torch::NoGradGuard no_grad;
    const torch::Tensor l = eager->forward(x);
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(got[i].margin, (l[i][1] - l[i][0]).item<double>(), 1e-4)
          << p.kind << " image " << i;
    }
  }
}

TEST(TrainingBoxes, NoValidationOrTestBoxReachesTraining) {
  // 60 fractured images with boxes and 60 without fracture, 40 groups; the split's validation and
  // test images have boxes too, and none of them may be handed to the trainer.
  data::Dataset ds;
  ds.class_names = {"no", "yes"};
  for (int i = 0; i < 120; ++i) {
    data::Record r;
    r.path = "img" + std::to_string(i) + ".png";
    r.label = i % 2;
    r.group = "g" + std::to_string(i % 40);
    r.boxes_known = true;
    if (r.label == 1) r.boxes = {{0.1, 0.1, 0.2, 0.2}};
    ds.records.push_back(r);
  }
  const data::Split split = data::make_split(ds, {0.2, 0.2, 3});
  const std::vector<int> train = split.indices(data::Part::kTrain);
  const auto boxes = train::training_boxes(ds, train);
  size_t train_positives = 0;
  for (int i : train) train_positives += ds.records[i].label == 1;
  EXPECT_EQ(boxes->size(), train_positives);
  for (data::Part part : {data::Part::kVal, data::Part::kTest}) {
    const std::vector<int> held_out = split.indices(part);
    ASSERT_FALSE(held_out.empty());
    for (int i : held_out)
      EXPECT_EQ(boxes->count(i), 0u) << "held-out image " << i << "'s box reached training";
  }
}

}  // namespace
}  // namespace wristssl::models
