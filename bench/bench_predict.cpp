// Inference latency and throughput of a model bundle: single-image latency (decode + preprocess +
// forward, p50 / p95) for a 16-bit PNG and a DICOM, with and without Grad-CAM, and the batch
// throughput of `predict` over a folder. The bundle is an untrained ResNet-18 classifier (speed
// does not depend on the weights) at the chosen input size.
//
// Usage: wristssl_bench_predict [--size 512] [--repeats 30] [--threads 0] [--folder-images 64]
//                               [--precision fp32] [--out DIR]
// With --out, the bundle, its TorchScript export and the folder of images are left there for the
// Python peer (bench/predict_pytorch.py).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/infer/export.h"
#include "wristssl/infer/predict.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/threads.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/allocator.h"

namespace fs = std::filesystem;
using namespace wristssl;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = p * (v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  return i + 1 < v.size() ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

struct Latency {
  std::vector<double> total, decode, preprocess, forward;
};

Latency measure(infer::Predictor& p, const std::string& file, int repeats, bool heatmap) {
  Latency l;
  for (int r = 0; r < repeats + 3; ++r) {  // 3 warm-up runs
    const auto t0 = clock_type::now();
    const io::Image img = io::read_image(file);
    const double t_decode = ms_since(t0);
    const auto t1 = clock_type::now();
    const torch::Tensor x = util::channels_last(p.batch({p.input(img)}));
    const double t_pre = ms_since(t1);
    const auto t2 = clock_type::now();
    if (heatmap) {
      torch::Tensor maps;
      p.predict_with_heatmaps(x, &maps);
      const std::string png = infer::heatmap_png(img, maps[0]);
      if (png.empty()) std::abort();
    } else {
      p.predict(x);
    }
    const double t_fwd = ms_since(t2);
    if (r < 3) continue;
    l.total.push_back(ms_since(t0));
    l.decode.push_back(t_decode);
    l.preprocess.push_back(t_pre);
    l.forward.push_back(t_fwd);
  }
  return l;
}

void print_row(const std::string& what, const Latency& l) {
  std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", what.c_str(), percentile(l.total, 0.5),
              percentile(l.total, 0.95), percentile(l.decode, 0.5), percentile(l.preprocess, 0.5),
              percentile(l.forward, 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  util::configure_allocator();
  int size = 512, repeats = 30, threads = 0, folder_images = 64;
  std::string precision = "fp32", out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--size")
      size = std::stoi(v);
    else if (a == "--repeats")
      repeats = std::stoi(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--folder-images")
      folder_images = std::stoi(v);
    else if (a == "--precision")
      precision = v;
    else if (a == "--out")
      out = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::string dir =
      out.empty() ? (fs::temp_directory_path() / "wristssl-bench-predict").string() : out;
  fs::create_directories(dir + "/images");
  const std::string src = WRISTSSL_SOURCE_DIR;
  const std::string png = data::list_image_files(src + "/samples/grazpedwri-dx/images").at(0);
  const std::string dcm = src + "/samples/dicom/CR-MONO1-10-chest.dcm";
  const std::string j2k = src + "/samples/dicom/RG3_J2KI.dcm";

  models::Bundle b = train::untrained_bundle(size, size, 1, "bench-untrained");
  models::write_bundle(b, dir + "/model.wristssl");
  infer::export_model(dir + "/model.wristssl", "torchscript", dir + "/model.torchscript");
  infer::Predictor p(b, {precision, threads});
  const int n_threads = at::get_num_threads();

  const io::Image pi = io::read_image(png), di = io::read_image(dcm), ji = io::read_image(j2k);
  std::printf("input %d px, %s, %d threads, %d timed runs after 3 warm-up runs (milliseconds)\n\n",
              size, precision.c_str(), n_threads, repeats);
  std::printf(
      "| image | p50 | p95 | decode p50 | preprocess p50 | forward (+ Grad-CAM) p50 "
      "|\n|---|---|---|---|---|---|\n");
  auto name = [](const std::string& what, const io::Image& im) {
    return what + " " + std::to_string(im.info.width) + "x" + std::to_string(im.info.height);
  };
  print_row(name("16-bit PNG", pi), measure(p, png, repeats, false));
  print_row(name("DICOM CR, uncompressed", di), measure(p, dcm, repeats, false));
  print_row(name("DICOM CR, JPEG 2000", ji), measure(p, j2k, repeats, false));
  print_row(name("16-bit PNG", pi) + ", with Grad-CAM overlay", measure(p, png, repeats, true));
  print_row(name("DICOM CR, uncompressed", di) + ", with Grad-CAM overlay",
            measure(p, dcm, repeats, true));

  // Throughput: predict over a folder of the bundled 16-bit PNGs, copied to `folder_images` files.
  const auto pngs = data::list_image_files(src + "/samples/grazpedwri-dx/images");
  for (int k = 0; k < folder_images; ++k) {
    const std::string dst = dir + "/images/" + std::to_string(k) + ".png";
    if (!fs::exists(dst)) fs::copy_file(pngs[k % pngs.size()], dst);
  }
  for (int batch : {1, 16}) {
    infer::PredictOptions po;
    po.model = dir + "/model.wristssl";
    po.inputs = {dir + "/images"};
    po.csv = dir + "/predict.csv";
    po.batch_size = batch;
    po.threads = threads;
    po.precision = precision;
    std::ostringstream sink;
    infer::run_predict(po, sink);  // warm-up
    const auto t0 = clock_type::now();
    infer::run_predict(po, sink);
    const double s = ms_since(t0) / 1000;
    std::printf("\npredict, %d images in a folder, batch %d: %.2f s, %.2f images/s\n",
                folder_images, batch, s, folder_images / s);
  }
  std::printf("\nfiles for the Python peer: %s\n", dir.c_str());
  return 0;
}
