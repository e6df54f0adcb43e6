#include "wristssl/train/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "seeded.h"
#include "test_paths.h"
#include "wristssl/models/simclr.h"
#include "wristssl/util/fs.h"

namespace wristssl::train {
namespace {

class Checkpoint : public testing::Seeded {};

TEST_F(Checkpoint, RoundTripsModelOptimizerAndState) {
  seed(0);
  models::SimCLR a;
  torch::optim::SGD opt_a(a->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  // One step so the optimizer has momentum buffers.
  a->forward(torch::randn({4, 1, 32, 32})).sum().backward();
  opt_a.step();
  const std::string path = testing::temp_dir("ckpt") + "/checkpoint.pt";
  CheckpointState s{"simclr", "{\"lr\":0.1}", 3, 2, 17, "{\"loss\":[1.5,2]}"};
  save_checkpoint(path, *a, &opt_a, s);

  seed(99);
  models::SimCLR b;
  torch::optim::SGD opt_b(b->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const CheckpointState r = load_checkpoint(path, *b, &opt_b, "simclr");
  EXPECT_EQ(r.epoch, 3);
  EXPECT_EQ(r.batch_in_epoch, 2);
  EXPECT_EQ(r.step, 17);
  EXPECT_EQ(r.config_json, s.config_json);
  EXPECT_EQ(r.extra_json, s.extra_json);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  for (const auto& buf : a->named_buffers()) EXPECT_TRUE(torch::equal(buf.value(), b->named_buffers()[buf.key()]));
  // Same momentum: one more identical step keeps them identical.
  const torch::Tensor x = torch::randn({4, 1, 32, 32});
  opt_a.zero_grad();
  opt_b.zero_grad();
  a->forward(x).sum().backward();
  b->forward(x).sum().backward();
  opt_a.step();
  opt_b.step();
  EXPECT_TRUE(torch::equal(a->head->net[0]->as<torch::nn::Linear>()->weight,
                           b->head->net[0]->as<torch::nn::Linear>()->weight));
}

TEST_F(Checkpoint, DamagedForeignAndOtherKindsAreRefused) {
  models::SimCLR m;
  const std::string dir = testing::temp_dir("ckpt_bad");
  const std::string path = dir + "/checkpoint.pt";
  save_checkpoint(path, *m, nullptr, {"simclr", "{}", 1, 0, 1, "{}"});
  EXPECT_THROW(load_checkpoint(path, *m, nullptr, "classifier"), CheckpointError);
  std::string bytes = util::read_text(path);
  bytes[bytes.size() / 2] ^= 0x01;
  util::atomic_write(dir + "/flipped.pt", bytes);
  try {
    load_checkpoint(dir + "/flipped.pt", *m, nullptr, "simclr");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  }
  util::atomic_write(dir + "/short.pt", bytes.substr(0, 50));
  EXPECT_THROW(load_checkpoint(dir + "/short.pt", *m, nullptr, "simclr"), CheckpointError);
  util::atomic_write(dir + "/foreign.pt", "PK\x03\x04 a zip that is not ours");
  EXPECT_THROW(load_checkpoint(dir + "/foreign.pt", *m, nullptr, "simclr"), CheckpointError);
  // Weights of another architecture (a linear head) do not load into an MLP head.
  models::SimCLR lin(models::ProjectionHeadOptions().kind("linear"));
  save_weights(dir + "/lin.pt", *lin, "simclr", "{}");
  EXPECT_THROW(load_weights(dir + "/lin.pt", *m, "simclr"), CheckpointError);
}

}  // namespace
}  // namespace wristssl::train
