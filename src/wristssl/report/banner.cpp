#include "wristssl/report/banner.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "wristssl/report/banner_font.h"

namespace wristssl::report {

int text_width(const std::string& text, int scale) {
  return static_cast<int>(text.size()) * font::kWidth * scale;
}

void draw_text(Overlay& image, int x, int y, const std::string& text, int scale, Rgb colour) {
  if (scale < 1) throw std::invalid_argument("draw_text: scale must be >= 1");
  if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw std::invalid_argument("draw_text: image size does not match its pixels");
  for (size_t i = 0; i < text.size(); ++i) {
    int c = static_cast<unsigned char>(text[i]);
    if (c < font::kFirst || c > font::kLast) c = '?';
    const uint16_t* glyph = font::kGlyphs[c - font::kFirst];
    const int gx = x + static_cast<int>(i) * font::kWidth * scale;
    for (int r = 0; r < font::kHeight; ++r) {
      for (int col = 0; col < font::kWidth; ++col) {
        if (!(glyph[r] & (0x8000u >> col))) continue;
        for (int dy = 0; dy < scale; ++dy) {
          const int py = y + r * scale + dy;
          if (py < 0 || py >= image.height) continue;
          for (int dx = 0; dx < scale; ++dx) {
            const int px = gx + col * scale + dx;
            if (px < 0 || px >= image.width) continue;
            uint8_t* p = &image.rgb[(static_cast<size_t>(py) * image.width + px) * 3];
            p[0] = colour[0];
            p[1] = colour[1];
            p[2] = colour[2];
          }
        }
      }
    }
  }
}

namespace {

// `text` broken at spaces into pieces of at most `max_chars` (a word longer than that is cut).
std::vector<std::string> wrap(const std::string& text, int max_chars) {
  std::vector<std::string> out;
  if (max_chars <= 0) return out;
  const size_t width = static_cast<size_t>(max_chars);
  std::string rest = text;
  while (rest.size() > width) {
    size_t cut = rest.rfind(' ', width);
    if (cut == std::string::npos || cut == 0) cut = width;
    out.push_back(rest.substr(0, cut));
    rest.erase(0, cut);
    rest.erase(0, rest.find_first_not_of(' ') == std::string::npos ? rest.size() : rest.find_first_not_of(' '));
  }
  if (!rest.empty() || out.empty()) out.push_back(rest);
  return out;
}

}  // namespace

Overlay add_banner(const Overlay& image, const std::vector<BannerLine>& lines) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw std::invalid_argument("add_banner: image size does not match its pixels");
  const int scale = std::max(1, (image.width + 639) / 640);
  const int margin = 6 * scale;
  const int line_height = font::kHeight * scale + 2 * scale;
  const int max_chars = std::max(1, (image.width - 2 * margin) / (font::kWidth * scale));
  std::vector<BannerLine> rows;
  for (const BannerLine& line : lines)
    for (std::string& piece : wrap(line.text, max_chars)) rows.push_back({std::move(piece), line.colour});
  const int band = rows.empty() ? 0 : 2 * margin + static_cast<int>(rows.size()) * line_height;
  Overlay out;
  out.width = image.width;
  out.height = image.height + band;
  out.rgb.assign(static_cast<size_t>(out.width) * band * 3, 0);
  out.rgb.insert(out.rgb.end(), image.rgb.begin(), image.rgb.end());
  for (size_t i = 0; i < rows.size(); ++i)
    draw_text(out, margin, margin + static_cast<int>(i) * line_height, rows[i].text, scale, rows[i].colour);
  return out;
}

}  // namespace wristssl::report
