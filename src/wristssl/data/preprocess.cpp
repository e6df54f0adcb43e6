#include "wristssl/data/preprocess.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "wristssl/data/augment.h"
#include "wristssl/io/resize.h"

namespace wristssl::data {

std::vector<uint16_t> render_u16(const io::Image& image, int image_size, bool keep_aspect) {
  const int w = image.info.width, h = image.info.height;
  if (static_cast<size_t>(w) * h != image.pixels.size() || w <= 0 || h <= 0) {
    throw std::invalid_argument("render_u16: image of " + std::to_string(w) + "x" +
                                std::to_string(h) + " holds " +
                                std::to_string(image.pixels.size()) + " pixels");
  }
  const std::vector<float> small =
      keep_aspect ? io::resize_letterbox(image.pixels, w, h, image_size, 0.0f)
                  : io::resize_image(image.pixels, w, h, image_size, image_size);
  std::vector<uint16_t> out(small.size());
  for (size_t i = 0; i < small.size(); ++i) {
    out[i] =
        static_cast<uint16_t>(std::lround(std::fmin(1.0f, std::fmax(0.0f, small[i])) * 65535.0f));
  }
  return out;
}

void normalize_in_place(float* values, int64_t n, float mean, float stdev) {
  const float inv_std = 1.0f / stdev;
  for (int64_t i = 0; i < n; ++i) values[i] = (values[i] - mean) * inv_std;
}

void network_input(const uint16_t* pixels, const Preprocessing& p, float* out) {
  augment_view(pixels, p.image_size, out, AugmentOptions::none(p.input_size), 0);
  normalize_in_place(out, static_cast<int64_t>(p.input_size) * p.input_size, p.mean, p.stdev);
}

std::vector<float> network_input(const io::Image& image, const Preprocessing& p) {
  const std::vector<uint16_t> px = render_u16(image, p.image_size, p.keep_aspect);
  std::vector<float> out(static_cast<size_t>(p.input_size) * p.input_size);
  network_input(px.data(), p, out.data());
  return out;
}

}  // namespace wristssl::data
