// A run's config.json, with what the run recorded beside its options ("resolved", "world_size"), is a
// valid --config for the same command: `wristssl train --config RUN/config.json` repeats the run.
#include <gtest/gtest.h>

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
  // Anything else unknown is still refused, by name.
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

}  // namespace
}  // namespace wristssl::train
