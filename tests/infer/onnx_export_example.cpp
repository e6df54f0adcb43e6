// Writes an ONNX file for a FoldedResNet18 with seeded random weights, plus those weights for an
// independent reference: OUT_DIR/model.onnx, OUT_DIR/weights.bin (every tensor as raw little-endian
// float32, one after another) and OUT_DIR/weights.json ({in_channels, num_classes, seed, tensors:
// [{name, shape, offset}]}, offset in floats). Used by onnx_export_check.sh.
// Usage: onnx_export_example OUT_DIR [SEED]

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wristssl/infer/onnx_export.h"
#include "wristssl/util/fs.h"

namespace {

namespace infer = wristssl::infer;

// He-normal weights (std sqrt(2 / fan_in)) keep the second moment roughly constant through
// conv + relu; `gain` < 1 on each block's last conv keeps the residual sums from doubling it eight
// times. Biases stand in for folded batch norm shifts.
void randomize(infer::FoldedConv& c, double gain, std::mt19937_64& rng) {
  const double fan_in = static_cast<double>(c.in_channels * c.kernel * c.kernel);
  std::normal_distribution<float> w(0.0f, static_cast<float>(gain * std::sqrt(2.0 / fan_in)));
  std::normal_distribution<float> b(0.0f, 0.1f);
  for (float& v : c.weight) v = w(rng);
  for (float& v : c.bias) v = b(rng);
}

infer::FoldedResNet18 random_net(uint64_t seed) {
  std::mt19937_64 rng(seed);
  infer::FoldedResNet18 net = infer::resnet18_layout(1, 2);
  randomize(net.conv1, 1.0, rng);
  for (infer::FoldedBlock& b : net.blocks) {
    randomize(b.conv1, 1.0, rng);
    randomize(b.conv2, 0.5, rng);
    if (b.downsample) randomize(*b.downsample, 1.0, rng);
  }
  std::normal_distribution<float> fc(0.0f, static_cast<float>(1.0 / std::sqrt(512.0)));
  for (float& v : net.fc_weight) v = fc(rng);
  for (float& v : net.fc_bias) v = fc(rng);
  return net;
}

struct WeightsFile {
  std::string bytes;
  nlohmann::json tensors = nlohmann::json::array();

  void add(const std::string& name, const std::vector<int64_t>& shape,
           const std::vector<float>& values) {
    tensors.push_back({{"name", name}, {"shape", shape}, {"offset", bytes.size() / 4}});
    for (float v : values) {
      uint32_t bits = 0;
      std::memcpy(&bits, &v, sizeof(bits));
      for (int k = 0; k < 4; ++k) bytes += static_cast<char>((bits >> (8 * k)) & 0xff);
    }
  }
  void add(const infer::FoldedConv& c) {
    add(c.name + ".weight", {c.out_channels, c.in_channels, c.kernel, c.kernel}, c.weight);
    add(c.name + ".bias", {c.out_channels}, c.bias);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR [SEED]\n", argv[0]);
    return 2;
  }
  const std::string out_dir = argv[1];
  try {
    const uint64_t seed = argc > 2 ? std::stoull(argv[2]) : 20240611;
    const infer::FoldedResNet18 net = random_net(seed);
    infer::write_onnx(net, {{"source", "onnx_export_example"}, {"seed", std::to_string(seed)}},
                      out_dir + "/model.onnx");

    WeightsFile w;
    w.add(net.conv1);
    for (const infer::FoldedBlock& b : net.blocks) {
      w.add(b.conv1);
      w.add(b.conv2);
      if (b.downsample) w.add(*b.downsample);
    }
    w.add("fc.weight", {net.num_classes, infer::kResNet18Features}, net.fc_weight);
    w.add("fc.bias", {net.num_classes}, net.fc_bias);
    wristssl::util::atomic_write(out_dir + "/weights.bin", w.bytes);
    const nlohmann::json manifest = {{"in_channels", net.in_channels},
                                     {"num_classes", net.num_classes},
                                     {"seed", seed},
                                     {"tensors", w.tensors}};
    wristssl::util::atomic_write(out_dir + "/weights.json", manifest.dump(1) + "\n");
    std::printf("onnx_export_example: wrote %s/model.onnx and %zu tensors (seed %llu)\n",
                out_dir.c_str(), w.tensors.size(), static_cast<unsigned long long>(seed));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onnx_export_example: %s\n", e.what());
    return 1;
  }
}
