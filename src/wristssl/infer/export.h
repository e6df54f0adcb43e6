#pragma once
// Exports of a model bundle for the runtimes hospitals and research groups already use. Every
// export takes a float input [N, 1, H, W] already preprocessed (the bundle's preprocessing),
// returns the two class logits [N, 2] (no softmax), and keeps the batch and image sides free.

#include <torch/script.h>

#include <string>

#include "wristssl/infer/folded_resnet.h"
#include "wristssl/models/bundle.h"
#include "wristssl/models/classifier.h"

namespace wristssl::infer {

/// The classifier in inference form: every batch norm (eval statistics) folded into its
/// convolution.
FoldedResNet18 fold_batch_norm(models::ClassifierImpl& model);

/// TorchScript source of the folded network's forward (the attributes it reads are named like the
/// layers with '.' replaced by '_', plus "_weight" / "_bias").
std::string torchscript_source(const FoldedResNet18& net);

/// The folded network as a TorchScript module in memory (eval mode), with the manifest's summary
/// not attached.
torch::jit::Module torchscript_module(const models::Bundle& bundle);

/// A TorchScript module (torch.jit.load in Python, torch::jit::load in LibTorch) with the bundle's
/// manifest (without the tensor list) stored as the extra file "wristssl.json".
void export_torchscript(const models::Bundle& bundle, const std::string& path);

/// An ONNX model (opset 13, batch norm folded, dynamic batch / height / width) with the bundle's
/// identity, threshold and preprocessing as metadata.
void export_onnx(const models::Bundle& bundle, const std::string& path);

/// A state dict for torchvision.models.resnet18(num_classes=2) with a 1-channel conv1, saved in
/// torch.save's format: load with torch.load and load_state_dict(strict=True).
void export_torchvision(const models::Bundle& bundle, const std::string& path);

/// "torchscript", "onnx" or "torchvision"; throws naming the format otherwise.
void export_model(const std::string& bundle_path, const std::string& format,
                  const std::string& out);

}  // namespace wristssl::infer
