#include "wristssl/infer/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "wristssl/util/fs.h"
#include "wristssl/version.h"

namespace wristssl::infer {
namespace {

constexpr int64_t kIrVersion = 8;
constexpr int64_t kOpsetVersion = 13;

// ONNX stores raw_data little-endian whatever the host; write the bytes explicitly.
std::string float32_le(const std::vector<float>& values) {
  std::string raw(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits = 0;
    std::memcpy(&bits, &values[i], sizeof(bits));
    for (size_t k = 0; k < 4; ++k) raw[4 * i + k] = static_cast<char>((bits >> (8 * k)) & 0xff);
  }
  return raw;
}

void add_initializer(onnx::GraphProto& graph, const std::string& name,
                     const std::vector<int64_t>& dims, const std::vector<float>& values) {
  onnx::TensorProto* t = graph.add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(float32_le(values));
}

onnx::NodeProto* add_node(onnx::GraphProto& graph, const std::string& op, const std::string& name,
                          const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph.add_node();
  node->set_op_type(op);
  node->set_name(name);
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

void add_ints(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

// A dimension is either symbolic (dim_param, non-empty) or fixed (dim_value).
struct Dim {
  std::string param;
  int64_t value = 0;
};

void set_float_tensor(onnx::ValueInfoProto* info, const std::string& name,
                      const std::vector<Dim>& dims) {
  info->set_name(name);
  onnx::TypeProto_Tensor* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (const Dim& d : dims) {
    onnx::TensorShapeProto_Dimension* dim = t->mutable_shape()->add_dim();
    if (d.param.empty()) {
      dim->set_dim_value(d.value);
    } else {
      dim->set_dim_param(d.param);
    }
  }
}

// Conv with its folded bias; the output tensor is named after the layer.
std::string add_conv(onnx::GraphProto& graph, const FoldedConv& c, const std::string& x) {
  add_initializer(graph, c.name + ".weight", {c.out_channels, c.in_channels, c.kernel, c.kernel},
                  c.weight);
  add_initializer(graph, c.name + ".bias", {c.out_channels}, c.bias);
  onnx::NodeProto* node =
      add_node(graph, "Conv", c.name, {x, c.name + ".weight", c.name + ".bias"}, c.name);
  add_ints(node, "kernel_shape", {c.kernel, c.kernel});
  add_ints(node, "strides", {c.stride, c.stride});
  add_ints(node, "pads", {c.padding, c.padding, c.padding, c.padding});  // begin h, w; end h, w
  add_ints(node, "dilations", {1, 1});
  add_int(node, "group", 1);
  return c.name;
}

std::string add_relu(onnx::GraphProto& graph, const std::string& name, const std::string& x) {
  add_node(graph, "Relu", name, {x}, name);
  return name;
}

void add_mean_pooling(onnx::GraphProto& graph, const FoldedResNet18& net, const std::string& x);
void add_lse_pooling(onnx::GraphProto& graph, const FoldedResNet18& net, const std::string& x);

}  // namespace

std::string onnx_model_bytes(const FoldedResNet18& net,
                             const std::map<std::string, std::string>& metadata) {
  validate(net);
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("wristssl");
  model.set_producer_version(kVersion);
  model.set_model_version(1);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpsetVersion);
  for (const auto& [key, value] : metadata) {
    if (key.empty()) throw std::invalid_argument("onnx_model_bytes: empty metadata key");
    onnx::StringStringEntryProto* p = model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }

  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("wristssl_resnet18");
  graph.set_doc_string(
      "ResNet-18 with batch norm folded into the convolutions. input: float [batch, " +
      std::to_string(net.in_channels) + ", height, width]; logits: float [batch, " +
      std::to_string(net.num_classes) + "], before softmax.");
  set_float_tensor(graph.add_input(), "input",
                   {{"batch"}, {"", net.in_channels}, {"height"}, {"width"}});
  set_float_tensor(graph.add_output(), "logits", {{"batch"}, {"", net.num_classes}});

  std::string x = add_conv(graph, net.conv1, "input");
  x = add_relu(graph, "relu", x);
  onnx::NodeProto* pool = add_node(graph, "MaxPool", "maxpool", {x}, "maxpool");
  add_ints(pool, "kernel_shape", {3, 3});
  add_ints(pool, "strides", {2, 2});
  add_ints(pool, "pads", {1, 1, 1, 1});
  x = "maxpool";
  for (const FoldedBlock& b : net.blocks) {
    // validate() fixed the names, so "layer2.0.conv1" gives the block "layer2.0".
    const std::string block = b.conv1.name.substr(0, b.conv1.name.size() - std::strlen(".conv1"));
    std::string h = add_conv(graph, b.conv1, x);
    h = add_relu(graph, block + ".relu1", h);
    h = add_conv(graph, b.conv2, h);
    const std::string shortcut = b.downsample ? add_conv(graph, *b.downsample, x) : x;
    const std::string sum = block + ".add";
    add_node(graph, "Add", sum, {h, shortcut}, sum);
    x = add_relu(graph, block, sum);  // the block's output is named after it
  }
  if (net.pooling == "lse") {
    add_lse_pooling(graph, net, x);
  } else {
    add_mean_pooling(graph, net, x);
  }

  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    throw std::runtime_error("onnx_model_bytes: protobuf serialization failed");
  }
  return bytes;
}

void write_onnx(const FoldedResNet18& net, const std::map<std::string, std::string>& metadata,
                const std::string& path) {
  util::atomic_write(path, onnx_model_bytes(net, metadata));
}

namespace {

void add_mean_pooling(onnx::GraphProto& graph, const FoldedResNet18& net, const std::string& x) {
  add_node(graph, "GlobalAveragePool", "avgpool", {x}, "avgpool");  // [N, 512, 1, 1]
  onnx::NodeProto* flatten = add_node(graph, "Flatten", "flatten", {"avgpool"}, "flatten");
  add_int(flatten, "axis", 1);  // [N, 512]
  add_initializer(graph, "fc.weight", {net.num_classes, kResNet18Features}, net.fc_weight);
  add_initializer(graph, "fc.bias", {net.num_classes}, net.fc_bias);
  onnx::NodeProto* fc =
      add_node(graph, "Gemm", "fc", {"flatten", "fc.weight", "fc.bias"}, "logits");
  add_int(fc, "transB", 1);  // logits = flatten @ fc.weight^T + fc.bias, as torch.nn.Linear
}

// models::ClassifierImpl::logits_from_map for "lse": the margin map m = (w1 - w0) . f + (b1 - b0)
// as a 1x1 convolution, then M = max + log(mean(exp(r (m - max)))) / r and logits [0, M].
void add_lse_pooling(onnx::GraphProto& graph, const FoldedResNet18& net, const std::string& x) {
  std::vector<float> w(kResNet18Features);
  for (int64_t c = 0; c < kResNet18Features; ++c)
    w[c] = net.fc_weight[kResNet18Features + c] - net.fc_weight[c];
  add_initializer(graph, "margin.weight", {1, kResNet18Features, 1, 1}, w);
  add_initializer(graph, "margin.bias", {1}, {net.fc_bias[1] - net.fc_bias[0]});
  add_initializer(graph, "pool.sharpness", {}, {static_cast<float>(net.sharpness)});
  add_node(graph, "Conv", "margin_map", {x, "margin.weight", "margin.bias"}, "margin_map");
  add_int(add_node(graph, "Flatten", "margin_flat", {"margin_map"}, "margin_flat"), "axis", 1);
  onnx::NodeProto* mx = add_node(graph, "ReduceMax", "margin_max", {"margin_flat"}, "margin_max");
  add_ints(mx, "axes", {1});  // [N, 1]
  add_node(graph, "Sub", "centred", {"margin_flat", "margin_max"}, "centred");
  add_node(graph, "Mul", "scaled", {"centred", "pool.sharpness"}, "scaled");
  add_node(graph, "Exp", "exp", {"scaled"}, "exp");
  onnx::NodeProto* mean = add_node(graph, "ReduceMean", "exp_mean", {"exp"}, "exp_mean");
  add_ints(mean, "axes", {1});  // [N, 1]
  add_node(graph, "Log", "log_mean", {"exp_mean"}, "log_mean");
  add_node(graph, "Div", "log_mean_r", {"log_mean", "pool.sharpness"}, "log_mean_r");
  add_node(graph, "Add", "pooled", {"log_mean_r", "margin_max"}, "pooled");  // [N, 1]
  add_node(graph, "Sub", "zero", {"pooled", "pooled"}, "zero");
  add_int(add_node(graph, "Concat", "logits", {"zero", "pooled"}, "logits"), "axis", 1);
}

}  // namespace

}  // namespace wristssl::infer
