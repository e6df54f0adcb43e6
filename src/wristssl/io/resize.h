#pragma once
// Resizing for the preprocessing cache: exact area averaging when shrinking (no aliasing of fine
// trabecular texture), bilinear when enlarging.

#include <vector>

namespace wristssl::io {

/// Resizes a [height, width] grey image to [out_height, out_width]. Each axis independently uses area
/// averaging (out < in) or bilinear interpolation with half-pixel centres (out >= in).
std::vector<float> resize_image(const std::vector<float>& pixels, int width, int height, int out_width,
                                int out_height);

/// Resizes to fit a size x size square keeping the aspect ratio, padding with `pad_value` (centred).
/// `content` receives the placed rectangle {x, y, w, h}.
std::vector<float> resize_letterbox(const std::vector<float>& pixels, int width, int height, int size,
                                    float pad_value, int content[4] = nullptr);

}  // namespace wristssl::io
