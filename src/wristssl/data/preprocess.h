#pragma once
// The one preprocessing path from a decoded radiograph to the network's input, shared by the cache
// (training, evaluation) and by inference on single files (predict, serve), so that a file scores
// the same whichever way it reaches the model.

#include <cstdint>
#include <vector>

#include "wristssl/io/image.h"

namespace wristssl::data {

/// How an image becomes a network input: resized to image_size x image_size (stretched, the paper's
/// choice, or letterboxed), stored as 16-bit, resized to input_size, then (x - mean) / stdev.
struct Preprocessing {
  int image_size = 512;  // the cached side
  int input_size = 512;  // the side fed to the network (the classifier's crop size)
  bool keep_aspect = false;
  float mean = 0.5f;
  float stdev = 0.25f;
};

/// The decoded image resized to image_size x image_size and quantised to 16 bits (0..65535 for [0,
/// 1]): exactly what the preprocessing cache stores.
std::vector<uint16_t> render_u16(const io::Image& image, int image_size, bool keep_aspect);

/// Normalises `n` values in place: (x - mean) / stdev, as the training loader does.
void normalize_in_place(float* values, int64_t n, float mean, float stdev);

/// Writes the network input [input_size * input_size] for 16-bit pixels [image_size * image_size]:
/// the whole image resized to input_size (no augmentation), normalised.
void network_input(const uint16_t* pixels, const Preprocessing& p, float* out);

/// render_u16 then network_input: a decoded file straight to its network input.
std::vector<float> network_input(const io::Image& image, const Preprocessing& p);

}  // namespace wristssl::data
