#pragma once
// Grad-CAM overlays for the report and the predictor: the radiograph in grey with the evidence map
// in Google's Turbo colours on top, and a colour bar beside it.

#include <array>
#include <cstdint>
#include <vector>

namespace wristssl::report {

/// Turbo (Google, 2019) at `v` in [0, 1] (clamped; NaN as 0) as 8-bit sRGB: dark blue at 0,
/// green-yellow at 0.5, dark red at 1. Within 1/255 of the published 256-entry table.
std::array<uint8_t, 3> colormap_turbo(double v);

/// An 8-bit RGB image: `rgb` holds [height, width, 3] interleaved samples, row-major.
struct Overlay {
  std::vector<uint8_t> rgb;
  int width = 0;
  int height = 0;
};

/// Blends `cam` in Turbo colours over `grey` (both [height, width] in [0, 1], clamped; NaN as 0;
/// the caller upsamples the map to the image size). Per pixel: (1 - a) * grey + a * turbo(cam),
/// where a = alpha for cam >= 0.2 and falls linearly to 0 at cam = 0, so that cold regions show the
/// radiograph as it is. With `scale_bar`, a 4 px white gap and a 12 px colour bar are appended on
/// the right (the result is then width + 16 px wide): a 1 px grey border around turbo(1) in the
/// first row inside it, down to turbo(0) in the last. Throws std::invalid_argument when a size does
/// not match or alpha is outside [0, 1].
Overlay overlay_heatmap(const std::vector<float>& grey, const std::vector<float>& cam, int width,
                        int height, float alpha = 0.45f, bool scale_bar = true);

/// Draws the outline of the pixel rectangle [x0, x1) x [y0, y1) on `image` (clipped to it),
/// `thickness` pixels wide inside the rectangle, in `colour`; `dashed`: dashes of 3 * thickness
/// pixels with equal gaps (the "doubtful" style of a box, as BoneView draws it). A black line of
/// one pixel runs outside the outline so that it shows on bright bone and on the heatmap alike.
void draw_box(Overlay& image, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> colour,
              bool dashed = false, int thickness = 2);

}  // namespace wristssl::report
