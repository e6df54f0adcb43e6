// Writes a bundle of a randomly initialised classifier (random batch-norm statistics), its three
// exports, two inputs (one not square, batch 2; one square) and the native model's logits for them,
// for export_check.py to compare. Also runs the TorchScript export in LibTorch. Usage:
// export_example DIR [lse]: with "lse", the model pools its per-location fracture log-odds by
// log-sum-exp (models::Pooling), which TorchScript and ONNX carry and the torchvision state dict
// cannot (its export is refused, and checked to be).
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "wristssl/infer/export.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/run_bundle.h"

namespace {

void write_raw(const std::string& path, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(c.data_ptr<float>()),
            static_cast<std::streamsize>(c.numel() * sizeof(float)));
}

}  // namespace

int main(int argc, char** argv) {
  const bool lse = argc == 3 && std::string(argv[2]) == "lse";
  if (argc != 2 && !lse) {
    std::fprintf(stderr, "usage: export_example DIR [lse]\n");
    return 2;
  }
  using namespace wristssl;
  const std::string dir = argv[1];
  models::Pooling pooling;
  if (lse) pooling = {"lse", 3.0};
  models::Bundle b = train::untrained_bundle(96, 96, 21, "export-test", pooling);
  models::write_bundle(b, dir + "/model.wristssl");
  // The same weights with a threshold so low that every image is called fracture and shows its
  // boxes (tests/dicom/dicom_check.sh: the SR's image regions).
  models::Bundle flagging = b;
  flagging.manifest["decision"]["threshold"] = 0.02;
  flagging.manifest["decision"]["refer_band"]["lo"] = 0.01;
  flagging.manifest["decision"]["refer_band"]["hi"] = 0.03;
  flagging.manifest["localisation"] = {{"show", true}};
  models::write_bundle(flagging, dir + "/model-flagging.wristssl");
  for (const char* f : {"torchscript", "onnx"}) {
    infer::export_model(dir + "/model.wristssl", f, dir + "/model." + f);
  }
  try {
    infer::export_model(dir + "/model.wristssl", "torchvision", dir + "/model.torchvision");
    if (lse) {
      std::fprintf(stderr,
                   "export_example: the torchvision export of an lse model was not refused\n");
      return 1;
    }
  } catch (const std::exception& e) {
    if (!lse) throw;
    std::fprintf(stderr, "export_example: torchvision export refused as it must be: %s\n",
                 e.what());
  }
  models::Classifier net = models::classifier_from_bundle(b);
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{2, 1, 64, 80}, {1, 1, 96, 96}};
  torch::jit::Module ts = torch::jit::load(dir + "/model.torchscript");
  double worst = 0;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const torch::Tensor x = torch::randn(shapes[k]);
    const torch::Tensor y = net->forward(x);
    write_raw(dir + "/input" + std::to_string(k) + ".bin", x);
    write_raw(dir + "/native" + std::to_string(k) + ".bin", y);
    const torch::Tensor z = ts.forward({x}).toTensor();
    worst = std::max(worst, (z - y).abs().max().item<double>());
  }
  std::printf("{\"libtorch_torchscript_max_abs_diff\": %.3g}\n", worst);
  return worst <= 1e-4 ? 0 : 1;
}
