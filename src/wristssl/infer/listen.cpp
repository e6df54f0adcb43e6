#include "wristssl/infer/listen.h"

#include <atomic>
#include <csignal>
#include <cstdio>

#include "wristssl/infer/predict.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/memory_format.h"

namespace wristssl::infer {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

}  // namespace

int run_listen(const ListenOptions& o) {
  if (o.model.empty()) throw std::runtime_error("listen needs --model BUNDLE");
  Predictor predictor(models::read_bundle(o.model), {o.precision, o.threads});
  const dicom::ModelIdentity identity = model_identity(predictor.bundle(), predictor.rule());
  std::fprintf(stderr, "listen: model %s, threshold %.4f, refer band [%.4f, %.4f)\n", identity.id.c_str(),
               predictor.rule().threshold, predictor.rule().refer_lo, predictor.rule().refer_hi);
  const dicom::Scorer scorer = [&predictor](const std::string& path) {
    const io::Image image = io::read_image(path);
    const torch::Tensor x =
        util::channels_last(predictor.batch({predictor.input(image)}));
    torch::Tensor maps;
    const std::vector<Prediction> p = predictor.predict_with_heatmaps(x, &maps);
    dicom::Scored s;
    s.finding = {p.at(0).probability, p.at(0).decision};
    s.picture = heatmap_overlay(image, maps[0], kCaptureMaxSide);
    return s;
  };
  g_stop = false;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  return dicom::run_node(o.node, identity, scorer, g_stop);
}

}  // namespace wristssl::infer
