// Prints the largest absolute difference between two SimCLR backbones saved by `wristssl pretrain`
// (backbone.pt), over every parameter and buffer, and the name where it is. Usage: weights_diff A B

#include <cmath>
#include <cstdio>
#include <string>

#include "wristssl/models/resnet.h"
#include "wristssl/train/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: weights_diff A.pt B.pt\n");
    return 2;
  }
  using wristssl::models::ResNet18;
  ResNet18 a(wristssl::models::ResNetOptions().num_classes(0));
  ResNet18 b(wristssl::models::ResNetOptions().num_classes(0));
  wristssl::train::load_weights(argv[1], *a, "backbone");
  wristssl::train::load_weights(argv[2], *b, "backbone");
  double worst = 0, scale = 0;
  std::string where;
  auto compare = [&](const std::string& name, const torch::Tensor& x, const torch::Tensor& y) {
    const double d = (x.to(torch::kDouble) - y.to(torch::kDouble)).abs().max().item<double>();
    scale = std::max(scale, x.to(torch::kDouble).abs().max().item<double>());
    if (d > worst || where.empty()) {
      worst = std::max(worst, d);
      where = name;
    }
  };
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) compare(p.key(), p.value(), pb[p.key()]);
  const auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& p : ba)
    if (p.value().is_floating_point()) compare(p.key(), p.value(), bb[p.key()]);
  std::printf("%.3g %s (largest |value| %.3g)\n", worst, where.c_str(), scale);
  return 0;
}
