#include "wristssl/infer/onnx_export.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "test_paths.h"
#include "wristssl/util/fs.h"
#include "wristssl/version.h"

namespace wristssl::infer {
namespace {

// The message of the std::invalid_argument that validate() throws, or "" when it accepts `net`.
std::string validate_error(const FoldedResNet18& net) {
  try {
    validate(net);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

std::string dim_text(const onnx::TensorShapeProto_Dimension& d) {
  return d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value());
}

std::string shape_text(const onnx::ValueInfoProto& v) {
  std::string s;
  for (const auto& d : v.type().tensor_type().shape().dim())
    s += (s.empty() ? "" : ",") + dim_text(d);
  return s;
}

TEST(FoldedResNet18, LayoutHasTheTorchvisionNamesAndShapes) {
  const FoldedResNet18 net = resnet18_layout(1, 2);
  EXPECT_EQ(validate_error(net), "");
  ASSERT_EQ(net.blocks.size(), 8u);
  EXPECT_EQ(net.conv1.weight.size(), 64u * 1 * 7 * 7);
  EXPECT_EQ(net.blocks[2].conv1.name, "layer2.0.conv1");
  EXPECT_EQ(net.blocks[2].conv1.stride, 2);
  ASSERT_TRUE(net.blocks[2].downsample.has_value());
  EXPECT_EQ(net.blocks[2].downsample->name, "layer2.0.downsample.0");
  EXPECT_EQ(net.blocks[2].downsample->weight.size(), 128u * 64);
  EXPECT_FALSE(net.blocks[0].downsample.has_value());
  EXPECT_FALSE(net.blocks[3].downsample.has_value());
  EXPECT_EQ(net.blocks[7].conv2.name, "layer4.1.conv2");
  EXPECT_EQ(net.fc_weight.size(), 2u * 512);
  EXPECT_EQ(resnet18_layout(3, 5).conv1.weight.size(), 64u * 3 * 7 * 7);
  EXPECT_THROW(resnet18_layout(0, 2), std::invalid_argument);
}

TEST(FoldedResNet18, ValidateNamesTheLayerAndTheMismatch) {
  FoldedResNet18 net = resnet18_layout(1, 2);
  net.blocks[3].conv2.weight.pop_back();
  EXPECT_EQ(validate_error(net),
            "validate: layer2.1.conv2: weight has 147455 values, expected 128*128*3*3 = 147456");

  net = resnet18_layout(1, 2);
  net.blocks[4].downsample->bias.resize(3);
  EXPECT_EQ(validate_error(net),
            "validate: layer3.0.downsample.0: bias has 3 values, expected out_channels = 256");

  net = resnet18_layout(1, 2);
  net.blocks[6].downsample.reset();
  EXPECT_EQ(validate_error(net),
            "validate: layer4.0: downsample missing (stride 2, 256 -> 512 channels)");

  net = resnet18_layout(1, 2);
  net.blocks[1].conv1.stride = 2;
  EXPECT_EQ(validate_error(net), "validate: layer1.1.conv1: stride 2, expected 1");

  net = resnet18_layout(1, 2);
  net.blocks[0].conv1.name = "layer1.0.conv";
  EXPECT_EQ(validate_error(net), "validate: layer1.0.conv1: named 'layer1.0.conv'");

  net = resnet18_layout(1, 2);
  net.in_channels = 3;  // conv1 still holds one input channel
  EXPECT_EQ(validate_error(net), "validate: conv1: in_channels 1, expected 3");

  net = resnet18_layout(1, 2);
  net.blocks.pop_back();
  EXPECT_EQ(validate_error(net), "validate: blocks: 7 blocks, expected 8 (layer1.0 ... layer4.1)");

  net = resnet18_layout(1, 2);
  net.fc_weight.resize(512);
  EXPECT_EQ(validate_error(net), "validate: fc: fc_weight has 512 values, expected 2*512 = 1024");

  net = resnet18_layout(1, 2);
  net.blocks[5].conv1.bias[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(validate_error(net).find("validate: layer3.1.conv1: bias[7] is "), std::string::npos);
}

TEST(OnnxExport, ParsesBackWithNamesSymbolicDimsInitializersAndMetadata) {
  FoldedResNet18 net = resnet18_layout(1, 2);
  net.conv1.weight[0] = 1.0f;
  net.fc_bias = {0.25f, -2.0f};
  const std::map<std::string, std::string> metadata = {{"threshold", "0.4210"},
                                                       {"input_size", "224"}};
  const onnx::ModelProto model = parse(onnx_model_bytes(net, metadata));

  EXPECT_EQ(model.ir_version(), 8);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).domain(), "");
  EXPECT_EQ(model.opset_import(0).version(), 13);
  EXPECT_EQ(model.producer_name(), "wristssl");
  EXPECT_EQ(model.producer_version(), kVersion);

  const onnx::GraphProto& g = model.graph();
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "input");
  EXPECT_EQ(g.input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(shape_text(g.input(0)), "batch,1,height,width");
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.output(0).name(), "logits");
  EXPECT_EQ(g.output(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(shape_text(g.output(0)), "batch,2");

  // 20 convolutions (conv1, 16 in the blocks, 3 downsamples) with weight and bias, plus fc's two.
  ASSERT_EQ(g.initializer_size(), 2 * 20 + 2);
  std::map<std::string, const onnx::TensorProto*> init;
  for (const auto& t : g.initializer()) init[t.name()] = &t;
  EXPECT_EQ(init.size(), 42u) << "initializer names must be unique";
  for (const char* name :
       {"conv1.weight", "conv1.bias", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
        "layer4.1.conv2.bias", "fc.weight", "fc.bias"}) {
    EXPECT_EQ(init.count(name), 1u) << name;
  }
  int64_t values = 0;
  for (const auto& [name, t] : init) {
    EXPECT_EQ(t->data_type(), onnx::TensorProto::FLOAT) << name;
    EXPECT_EQ(t->float_data_size(), 0) << name;
    int64_t n = 1;
    for (int64_t d : t->dims()) n *= d;
    EXPECT_EQ(static_cast<int64_t>(t->raw_data().size()), 4 * n) << name;
    values += n;
  }
  // torchvision resnet18: 11,689,512 parameters; with 1 input channel (-6,272), 2 classes
  // (-511,974) and each batch norm's weight and bias (2 C) folded into one conv bias (C, 4,800 in
  // all) that leaves:
  EXPECT_EQ(values, 11'166'466);
  const onnx::TensorProto& w = *init.at("layer2.0.downsample.0.weight");
  ASSERT_EQ(w.dims_size(), 4);
  EXPECT_EQ(w.dims(0), 128);
  EXPECT_EQ(w.dims(1), 64);
  EXPECT_EQ(w.dims(2), 1);
  // Little-endian float32: 1.0f is 0x3f800000, 0.25f 0x3e800000, -2.0f 0xc0000000.
  EXPECT_EQ(init.at("conv1.weight")->raw_data().substr(0, 8),
            std::string("\0\0\x80\x3f\0\0\0\0", 8));
  EXPECT_EQ(init.at("fc.bias")->raw_data(), std::string("\0\0\x80\x3e\0\0\0\xc0", 8));

  std::map<std::string, std::string> props;
  for (const auto& p : model.metadata_props()) props[p.key()] = p.value();
  EXPECT_EQ(props, metadata);
}

TEST(OnnxExport, NodesAreTopologicallySortedWithTheExpectedOps) {
  const onnx::ModelProto model = parse(onnx_model_bytes(resnet18_layout(1, 2), {}));
  const onnx::GraphProto& g = model.graph();
  std::set<std::string> known = {"input"};
  for (const auto& t : g.initializer()) known.insert(t.name());
  std::map<std::string, int> ops;
  for (const auto& node : g.node()) {
    ++ops[node.op_type()];
    for (const auto& in : node.input())
      EXPECT_EQ(known.count(in), 1u) << node.name() << " reads " << in;
    for (const auto& out : node.output()) EXPECT_TRUE(known.insert(out).second) << out << " twice";
  }
  EXPECT_EQ(known.count("logits"), 1u);
  const std::map<std::string, int> want = {{"Conv", 20}, {"Relu", 17},   {"MaxPool", 1},
                                           {"Add", 8},   {"Flatten", 1}, {"GlobalAveragePool", 1},
                                           {"Gemm", 1}};
  EXPECT_EQ(ops, want);

  const onnx::NodeProto& first = g.node(0);
  EXPECT_EQ(first.op_type(), "Conv");
  std::map<std::string, std::string> attrs;
  for (const auto& a : first.attribute()) {
    std::string v;
    for (int64_t i : a.ints()) v += (v.empty() ? "" : ",") + std::to_string(i);
    attrs[a.name()] = a.type() == onnx::AttributeProto::INT ? std::to_string(a.i()) : v;
  }
  EXPECT_EQ(attrs["kernel_shape"], "7,7");
  EXPECT_EQ(attrs["strides"], "2,2");
  EXPECT_EQ(attrs["pads"], "3,3,3,3");
  const onnx::NodeProto& fc = g.node(g.node_size() - 1);
  EXPECT_EQ(fc.op_type(), "Gemm");
  ASSERT_EQ(fc.attribute_size(), 1);
  EXPECT_EQ(fc.attribute(0).name(), "transB");
  EXPECT_EQ(fc.attribute(0).i(), 1);
}

TEST(OnnxExport, RejectsAnInvalidNetworkAndAnEmptyMetadataKey) {
  FoldedResNet18 net = resnet18_layout(1, 2);
  EXPECT_THROW(onnx_model_bytes(net, {{"", "x"}}), std::invalid_argument);
  net.conv1.bias.clear();
  EXPECT_THROW(onnx_model_bytes(net, {}), std::invalid_argument);
}

TEST(OnnxExport, WriteOnnxWritesTheSameBytes) {
  const std::string dir = testing::temp_dir("onnx_export");
  const FoldedResNet18 net = resnet18_layout(3, 4);
  const std::map<std::string, std::string> metadata = {{"k", "v"}};
  write_onnx(net, metadata, dir + "/sub/model.onnx");
  EXPECT_EQ(util::read_text(dir + "/sub/model.onnx"), onnx_model_bytes(net, metadata));
  const onnx::ModelProto model = parse(util::read_text(dir + "/sub/model.onnx"));
  EXPECT_EQ(shape_text(model.graph().input(0)), "batch,3,height,width");
  EXPECT_EQ(shape_text(model.graph().output(0)), "batch,4");
}

}  // namespace
}  // namespace wristssl::infer
