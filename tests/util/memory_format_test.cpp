#include "wristssl/util/memory_format.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

using wristssl::util::channels_last;

// The trap this helper exists for: a 1-channel batch "made channels-last" by contiguous() keeps NCHW strides.
TEST(ChannelsLast, OneChannelBatchGetsChannelsLastStrides) {
  const torch::Tensor x = torch::randn({4, 1, 6, 5});
  const torch::Tensor y = channels_last(x);
  EXPECT_EQ(y.suggest_memory_format(), at::MemoryFormat::ChannelsLast);
  EXPECT_EQ(y.strides().vec(), (std::vector<int64_t>{30, 1, 5, 1}));
  EXPECT_TRUE(torch::equal(x, y));
}

TEST(ChannelsLast, AOneChannelConvolutionThenRunsChannelsLast) {
  torch::NoGradGuard no_grad;
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(1, 8, 3).padding(1).bias(false));
  conv->weight.set_data(channels_last(conv->weight.data()));
  EXPECT_EQ(conv->weight.suggest_memory_format(), at::MemoryFormat::ChannelsLast);
  const torch::Tensor x = torch::randn({2, 1, 9, 9});
  const torch::Tensor out = conv(channels_last(x));
  EXPECT_EQ(out.suggest_memory_format(), at::MemoryFormat::ChannelsLast);
  // Same numbers as the NCHW convolution.
  EXPECT_TRUE(torch::allclose(out, conv(x.contiguous()), 1e-5, 1e-6));
}

TEST(ChannelsLast, ManyChannelsAndOtherRanks) {
  const torch::Tensor x = torch::randn({2, 3, 4, 5});
  const torch::Tensor y = channels_last(x);
  EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(x, y));
  EXPECT_EQ(channels_last(y).data_ptr(), y.data_ptr());  // already channels-last: no copy
  const torch::Tensor v = torch::randn({3, 4});
  EXPECT_EQ(channels_last(v).data_ptr(), v.data_ptr());
}

}  // namespace
