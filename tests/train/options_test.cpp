// A run's config.json, with what the run recorded beside its options ("resolved", "world_size"), is a
// valid --config for the same command: `wristssl train --config RUN/config.json` repeats the run.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "wristssl/train/classifier.h"
#include "wristssl/train/pretrain.h"

namespace wristssl::train {
namespace {

nlohmann::json as_recorded(nlohmann::json j) {
  j["resolved"] = {{"device", "cpu"}, {"bf16", true}, {"threads", 2}};
  j["world_size"] = 1;
  return j;
}

TEST(TrainOptions, ARunsConfigJsonIsAConfig) {
  ClassifierOptions o;
  o.finetune_epochs = 32;
  o.label_fraction = 0.1;
  o.init = "random";
  o.data.group_column = "dup_cluster";
  ClassifierOptions back;
  from_json(as_recorded(to_json(o)), back);
  EXPECT_EQ(to_json(back), to_json(o));
  // A description for the config's readers is fine (configs/ship_fracatlas.json has one);
  nlohmann::json described = to_json(o);
  described["description"] = "what this run is for";
  from_json(described, back);
  EXPECT_EQ(to_json(back), to_json(o));
  // anything else unknown is still refused, by name.
  nlohmann::json typo = to_json(o);
  typo["finetune_epoch"] = 3;
  try {
    from_json(typo, back);
    FAIL() << "an unknown key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'finetune_epoch'"), std::string::npos) << e.what();
  }
}

TEST(PretrainOptions, ARunsConfigJsonIsAConfig) {
  PretrainOptions o;
  o.epochs = 18;
  o.method = "dcl";
  PretrainOptions back;
  from_json(as_recorded(to_json(o)), back);
  EXPECT_EQ(to_json(back), to_json(o));
}

// Every field of each options struct, written out here from the struct's declaration (not from the
// visitor that serialises it), each with a value other than its default: a field the visitor
// forgets, misnames or fails to read back shows up below by name.
// clang-format off: one field per line (clang-format reflows a macro body unpredictably)
#define WRISTSSL_CLASSIFIER_FIELDS(X)               \
  X(out, std::string("o"))                          \
  X(split, std::string("s.json"))                   \
  X(val_fraction, 0.2)                              \
  X(test_fraction, 0.25)                            \
  X(cache_dir, std::string("c"))                    \
  X(limit, size_t{9})                               \
  X(image_size, 96)                                 \
  X(crop_size, 80)                                  \
  X(crops, std::string("native"))                   \
  X(pooling, std::string("lse"))                    \
  X(pool_sharpness, 3.5)                            \
  X(box_loss, 0.5)                                  \
  X(backbone, std::string("b.pt"))                  \
  X(init, std::string("random"))                    \
  X(probe_epochs, 3)                                \
  X(finetune_epochs, 4)                             \
  X(batch_size, 5)                                  \
  X(lr_probe, 0.5)                                  \
  X(lr_finetune, 0.25)                              \
  X(momentum, 0.8)                                  \
  X(weight_decay, 0.002)                            \
  X(probe_augment, true)                            \
  X(probe_method, std::string("logistic"))          \
  X(probe_l2, 0.125)                                \
  X(bn_reestimate, true)                            \
  X(warmup_epochs, 2)                               \
  X(backbone_lr_scale, 0.3)                         \
  X(augment, std::string("paper"))                  \
  X(imbalance, std::string("none"))                 \
  X(label_fraction, 0.1)                            \
  X(threshold_rule, std::string("sensitivity:0.9")) \
  X(refer_fraction, 0.2)                            \
  X(sync_bn, true)                                  \
  X(dist_backend, std::string("gloo"))              \
  X(dist_timeout, 60)                               \
  X(precision, std::string("bf16"))                 \
  X(channels_last, false)                           \
  X(seed, uint64_t{77})                             \
  X(threads, 3)                                     \
  X(workers, 1)                                     \
  X(bootstrap, 100)

#define WRISTSSL_PRETRAIN_FIELDS(X)    \
  X(out, std::string("o"))             \
  X(split, std::string("s.json"))      \
  X(cache_dir, std::string("c"))       \
  X(limit, size_t{9})                  \
  X(image_size, 96)                    \
  X(crop_size, 80)                     \
  X(epochs, 7)                         \
  X(batch_size, 6)                     \
  X(lr, 0.5)                           \
  X(lr_min, 0.01)                      \
  X(warmup_epochs, 3)                  \
  X(momentum, 0.8)                     \
  X(weight_decay, 0.002)               \
  X(optimizer, std::string("lars"))    \
  X(temperature, 0.3)                  \
  X(method, std::string("moco"))       \
  X(moco_queue, 128)                   \
  X(moco_momentum, 0.95)               \
  X(moco_key_splits, 4)                \
  X(head, std::string("linear"))       \
  X(augment, std::string("paper"))     \
  X(precision, std::string("bf16"))    \
  X(channels_last, false)              \
  X(init, std::string("tv.pt"))        \
  X(seed, uint64_t{77})                \
  X(threads, 3)                        \
  X(workers, 1)                        \
  X(prefetch, 5)                       \
  X(knn_k, 7)                          \
  X(knn_max, 99)                       \
  X(knn_every, 3)                      \
  X(max_steps, 11)                     \
  X(sync_bn, true)                     \
  X(dist_backend, std::string("gloo")) \
  X(dist_timeout, 60)
// clang-format on

#define WRISTSSL_SET(field, value) o.field = value;
#define WRISTSSL_KEY(field, value) #field,
#define WRISTSSL_SAME(field, value)         \
  EXPECT_EQ(back.field, o.field) << #field; \
  EXPECT_NE(fresh.field, o.field) << #field \
                                  << ": the test's value is the default, so it proves nothing";

template <class Options>
std::set<std::string> keys_of(const Options& o) {
  std::set<std::string> keys;
  const nlohmann::json j = to_json(o);  // named: items() of a temporary would dangle
  for (const auto& item : j.items()) keys.insert(item.key());
  return keys;
}

TEST(TrainOptions, EveryFieldRoundTripsByName) {
  ClassifierOptions o, fresh;
  WRISTSSL_CLASSIFIER_FIELDS(WRISTSSL_SET)
  o.data.data = "labels.csv";
  o.data.where = {"hand=1"};
  o.data.boxes = "annotations/yolo";
  o.data.box_class = 3;
  const std::set<std::string> expected = {WRISTSSL_CLASSIFIER_FIELDS(WRISTSSL_KEY) "data"};
  EXPECT_EQ(keys_of(o), expected);
  ClassifierOptions back;
  from_json(to_json(o), back);
  WRISTSSL_CLASSIFIER_FIELDS(WRISTSSL_SAME)
  EXPECT_EQ(back.data.data, "labels.csv");
  EXPECT_EQ(back.data.where, (std::vector<std::string>{"hand=1"}));
  EXPECT_EQ(back.data.boxes, "annotations/yolo");
  EXPECT_EQ(back.data.box_class, 3);
}

TEST(PretrainOptions, EveryFieldRoundTripsByName) {
  PretrainOptions o, fresh;
  WRISTSSL_PRETRAIN_FIELDS(WRISTSSL_SET)
  o.data.group_column = "patient_id";
  const std::set<std::string> expected = {WRISTSSL_PRETRAIN_FIELDS(WRISTSSL_KEY) "data"};
  EXPECT_EQ(keys_of(o), expected);
  PretrainOptions back;
  from_json(to_json(o), back);
  WRISTSSL_PRETRAIN_FIELDS(WRISTSSL_SAME)
  EXPECT_EQ(back.data.group_column, "patient_id");
}

}  // namespace
}  // namespace wristssl::train
