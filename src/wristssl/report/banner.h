#pragma once
// Text burned into images: a banner of one or more lines above a picture (the DICOM Secondary Capture of a
// result carries its decision this way, so that every viewer shows it). Terminus 12x24 glyphs, scaled by
// whole pixels; printable ASCII only.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "wristssl/report/heatmap.h"

namespace wristssl::report {

using Rgb = std::array<uint8_t, 3>;

/// The width in pixels of `text` drawn at `scale`.
int text_width(const std::string& text, int scale);

/// Draws `text` with its top-left corner at (x, y), clipped to the image. Characters outside printable
/// ASCII are drawn as '?'.
void draw_text(Overlay& image, int x, int y, const std::string& text, int scale, Rgb colour);

struct BannerLine {
  std::string text;
  Rgb colour{255, 255, 255};
};

/// `image` with a black band on top holding `lines`, left-aligned; the glyph scale follows the image
/// width (1 up to 640 px, 2 up to 1280, ...), and a line too long for the width wraps at spaces.
Overlay add_banner(const Overlay& image, const std::vector<BannerLine>& lines);

}  // namespace wristssl::report
