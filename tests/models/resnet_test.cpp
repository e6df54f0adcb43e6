#include "wristssl/models/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "wristssl/models/simclr.h"
#include "wristssl/util/fs.h"

namespace wristssl::models {
namespace {

TEST(ResNet18, StateDictMatchesTorchvisionNamesAndShapes) {
  // tests/fixtures/torchvision_resnet18_state.txt lists torchvision's resnet18().state_dict().
  ResNet18 model(ResNetOptions().in_channels(3).num_classes(1000));
  std::map<std::string, std::string> ours;
  auto shape = [](const torch::Tensor& t) {
    std::string s;
    for (int64_t d : t.sizes()) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? std::string("scalar") : s;
  };
  for (const auto& p : model->named_parameters()) ours[p.key()] = shape(p.value());
  for (const auto& b : model->named_buffers()) ours[b.key()] = shape(b.value());
  std::istringstream in(util::read_text(testing::repo_path("tests/fixtures/torchvision_resnet18_state.txt")));
  std::map<std::string, std::string> theirs;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    theirs[line.substr(0, line.find(' '))] = line.substr(line.find(' ') + 1);
  }
  ASSERT_EQ(theirs.size(), 122u);
  EXPECT_EQ(ours, theirs);
}

TEST(ResNet18, BackboneGives512FeaturesAndGreyInput) {
  ResNet18 model;  // 1 channel, no fc
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor f = model->forward(torch::randn({2, 1, 64, 64}));
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(model->feature_map(torch::randn({1, 1, 64, 64})).sizes(), (std::vector<int64_t>{1, 512, 2, 2}));
  EXPECT_THROW(model->forward(torch::randn({2, 3, 64, 64})), c10::Error);
  EXPECT_EQ(model->named_parameters().find("fc.weight"), nullptr);
}

TEST(ResNet18, LoadsThreeChannelWeightsBySummingConv1) {
  // A torchvision-style state dict written with torch::pickle_save (what torch.save's payload holds).
  ResNet18 rgb(ResNetOptions().in_channels(3).num_classes(1000));
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& p : rgb->named_parameters()) dict.insert(p.key(), p.value().detach());
  for (const auto& b : rgb->named_buffers()) dict.insert(b.key(), b.value());
  const std::string path = testing::temp_dir("weights") + "/rgb.pt";
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  util::atomic_write(path, std::string(bytes.begin(), bytes.end()));

  ResNet18 grey;
  const int copied = load_torchvision_weights(*grey, path);
  EXPECT_EQ(copied, 120);  // 122 minus fc.weight and fc.bias
  EXPECT_TRUE(torch::allclose(grey->conv1->weight, rgb->conv1->weight.sum(1, true)));
  EXPECT_TRUE(torch::equal(grey->layer3[1]->as<BasicBlock>()->bn2->running_var,
                           rgb->layer3[1]->as<BasicBlock>()->bn2->running_var));
  // Same output for a grey image as the RGB model given that image in all three channels.
  rgb->eval();
  grey->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({1, 1, 64, 64});
  EXPECT_TRUE(torch::allclose(grey->features(x), rgb->features(x.expand({1, 3, 64, 64})), 1e-4, 1e-5));

  util::atomic_write(path, "not a pickle");
  EXPECT_THROW(load_torchvision_weights(*grey, path), std::runtime_error);
}

TEST(ProjectionHead, MlpAndLinearShapes) {
  ProjectionHead mlp;
  EXPECT_EQ(mlp->forward(torch::randn({4, 512})).sizes(), (std::vector<int64_t>{4, 128}));
  EXPECT_EQ(mlp->parameters().size(), 4u);
  ProjectionHead lin(ProjectionHeadOptions().kind("linear"));
  EXPECT_EQ(lin->parameters().size(), 2u);
  EXPECT_THROW(ProjectionHead(ProjectionHeadOptions().kind("deep")), c10::Error);
  SimCLR s;
  EXPECT_EQ(s->forward(torch::randn({2, 1, 32, 32})).sizes(), (std::vector<int64_t>{2, 128}));
}

}  // namespace
}  // namespace wristssl::models
