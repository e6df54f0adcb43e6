#pragma once
// ONNX export of the folded ResNet-18 (inference form), written with the ONNX protobuf classes
// directly, so that it builds and is tested without LibTorch.

#include <map>
#include <string>

#include "wristssl/infer/folded_resnet.h"

namespace wristssl::infer {

/// The network as a serialized ONNX ModelProto (IR version 8, opset 13): input "input" float
/// [N, in_channels, H, W] with N, H and W symbolic ("batch", "height", "width"), output "logits"
/// float [N, num_classes] (no softmax). `metadata` (string key/values) goes to metadata_props;
/// producer_name "wristssl". Initializers are raw little-endian float32 named after the layers
/// ("conv1.weight", "conv1.bias", ..., "fc.weight", "fc.bias"). Calls validate() first; throws
/// std::invalid_argument for an invalid network or an empty metadata key.
std::string onnx_model_bytes(const FoldedResNet18& net,
                             const std::map<std::string, std::string>& metadata);

/// onnx_model_bytes written atomically to `path` (temp file, fsync, rename); creates missing
/// parent folders. Throws std::runtime_error naming the path when the write fails.
void write_onnx(const FoldedResNet18& net, const std::map<std::string, std::string>& metadata,
                const std::string& path);

}  // namespace wristssl::infer
