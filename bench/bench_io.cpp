// Decoding and resizing throughput on the bundled real radiographs: build/bench/wristssl_bench
#include <benchmark/benchmark.h>

#include "wristssl/io/read_image.h"
#include "wristssl/io/resize.h"
#include "wristssl/util/fs.h"

namespace {

using namespace wristssl;

std::vector<uint8_t> load(const std::string& rel) {
  const std::string s = util::read_text(std::string(WRISTSSL_SOURCE_DIR) + "/" + rel);
  return {s.begin(), s.end()};
}

void decode_file(benchmark::State& state, const std::string& rel) {
  const auto bytes = load(rel);
  int64_t pixels = 0;
  for (auto _ : state) {
    const io::Image img = io::decode_image(bytes.data(), bytes.size(), rel);
    pixels += static_cast<int64_t>(img.pixels.size());
    benchmark::DoNotOptimize(img.pixels.data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["Mpixel/s"] = benchmark::Counter(pixels / 1e6, benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(decode_file, png16_grazpedwri, "samples/grazpedwri-dx/images/2425_1070629475_01_WRI-L2_F005.png");
BENCHMARK_CAPTURE(decode_file, jpeg_fracatlas, "samples/fracatlas/images/Fractured/IMG0000319.jpg");
BENCHMARK_CAPTURE(decode_file, dicom_implicit_mono1, "samples/dicom/CR-MONO1-10-chest.dcm");
BENCHMARK_CAPTURE(decode_file, dicom_jpeg_lossless, "samples/dicom/CR-ModalitySequenceLUT.dcm");
BENCHMARK_CAPTURE(decode_file, dicom_jpeg2000, "samples/dicom/RG3_J2KI.dcm");

void resize_to(benchmark::State& state) {
  const int out = static_cast<int>(state.range(0));
  std::vector<float> in(1180 * 1136, 0.5f);
  for (auto _ : state) benchmark::DoNotOptimize(io::resize_image(in, 1136, 1180, out, out).data());
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(resize_to)->Arg(224)->Arg(512);

}  // namespace

BENCHMARK_MAIN();
