#include "wristssl/serve/listen.h"

#include <cstdio>

#include "wristssl/infer/predict.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/stop_signal.h"

namespace wristssl::serve {
int run_listen(const ListenOptions& o) {
  infer::Predictor predictor(models::read_bundle(models::model_or_shipped(o.model)),
                             {o.precision, o.threads});
  const dicom::ModelIdentity identity = infer::model_identity(predictor.bundle(), predictor.rule());
  std::fprintf(stderr, "listen: model %s, threshold %.4f, refer band [%.4f, %.4f)\n",
               identity.id.c_str(), predictor.rule().threshold, predictor.rule().refer_lo,
               predictor.rule().refer_hi);
  const dicom::Scorer scorer = [&predictor](const std::string& path) {
    const io::Image image = io::read_image(path);
    const torch::Tensor x = util::channels_last(predictor.batch({predictor.input(image)}));
    torch::Tensor maps;
    const std::vector<infer::Prediction> p = predictor.predict_with_heatmaps(x, &maps);
    dicom::Scored s;
    s.finding = infer::finding(p.at(0), predictor.rule(), image.info.width, image.info.height);
    s.picture =
        infer::heatmap_overlay(image, maps[0], infer::kCaptureMaxSide, &p.at(0), &predictor.rule());
    return s;
  };
  util::install_stop_handlers();
  return dicom::run_node(o.node, identity, scorer, util::stop_flag());
}

}  // namespace wristssl::serve
