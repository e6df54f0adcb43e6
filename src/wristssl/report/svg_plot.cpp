#include "wristssl/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace wristssl::report {
namespace {

constexpr double kTickLength = 5.0;
constexpr double kCharWidth =
    6.4;  // approximate advance of the 11.5px legend font, for legend sizing

// Pixel coordinates with one decimal: sub-pixel precision is invisible and keeps the page small.
std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

constexpr double kGuideFontPx = 11.0;  // svg .guide-label in the page's stylesheet

int tick_decimals(double step) {
  if (step >= 1.0) return std::fabs(step - std::round(step)) < 1e-9 ? 0 : 1;
  return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
}

std::string tick_label(double v, const Axis& a) {
  if (a.percent) return fixed(v * 100.0, tick_decimals(a.step * 100.0)) + "%";
  return fixed(v, tick_decimals(a.step));
}

int tick_count(const Axis& a) {
  return static_cast<int>(std::floor((a.hi - a.lo) / a.step + 1e-6));
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double text_width_px(std::string_view text, double font_px) {
  // Count code points, not bytes: UTF-8 continuation bytes are 10xxxxxx.
  const auto chars = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  return 0.6 * font_px * static_cast<double>(chars);
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  std::string s = buf;
  if (s == "-0" || s.rfind("-0.", 0) == 0) {
    // "-0.0" reads as a different number to a clinician; print zero without a sign.
    if (s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  }
  return s;
}

Axis nice_axis(double min, double max, int ticks, std::string label, double min_step) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    min = 0.0;
    max = 1.0;
  }
  if (min > max) std::swap(min, max);
  if (max - min < 1e-12) {
    const double pad = std::fabs(min) > 1e-12 ? std::fabs(min) * 0.1 : 1.0;
    min -= pad;
    max += pad;
  }
  const double raw = (max - min) / std::max(1, ticks);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw - 1e-12) {
      step = m * mag;
      break;
    }
  }
  step = std::max(step, min_step);
  Axis a;
  a.lo = std::floor(min / step + 1e-9) * step;
  a.hi = std::ceil(max / step - 1e-9) * step;
  a.step = step;
  a.label = std::move(label);
  return a;
}

SvgPlot::SvgPlot(std::string title, Axis x, Axis y, int width, int height)
    : title_(std::move(title)), x_(std::move(x)), y_(std::move(y)), width_(width), height_(height) {
  for (const Axis* a : {&x_, &y_}) {
    if (!(a->hi > a->lo) || !(a->step > 0.0)) {
      throw std::invalid_argument("SvgPlot '" + title_ + "': bad axis '" + a->label + "' [" +
                                  fixed(a->lo, 4) + ", " + fixed(a->hi, 4) + "] step " +
                                  fixed(a->step, 4));
    }
  }
}

void SvgPlot::set_y2(Axis y2) {
  if (!(y2.hi > y2.lo) || !(y2.step > 0.0)) {
    throw std::invalid_argument("SvgPlot '" + title_ + "': bad right axis '" + y2.label + "'");
  }
  y2_ = std::move(y2);
  has_y2_ = true;
  right_ = 62.0;
}

double SvgPlot::px(double x) const { return left_ + (x - x_.lo) / (x_.hi - x_.lo) * plot_width(); }

double SvgPlot::py(double y, bool right_axis) const {
  const Axis& a = right_axis && has_y2_ ? y2_ : y_;
  return top_ + (1.0 - (y - a.lo) / (a.hi - a.lo)) * plot_height();
}

void SvgPlot::line(const std::vector<XY>& points, const std::string& css_class,
                   const std::string& attrs, bool right_axis) {
  std::string pts;
  std::string last;
  int n = 0;
  for (const XY& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    std::string xy = coord(px(p.x)) + "," + coord(py(p.y, right_axis));
    if (xy == last) continue;  // coincident after rounding: drawing it twice adds bytes, not ink
    if (!pts.empty()) pts += ' ';
    pts += xy;
    last = std::move(xy);
    ++n;
  }
  if (n == 0) return;
  body_ += "<polyline class=\"mark " + css_class + "\" points=\"" + pts + "\"" +
           (attrs.empty() ? "" : " " + attrs) + "/>\n";
}

void SvgPlot::band(const std::vector<XY>& lower, const std::vector<XY>& upper,
                   const std::string& css_class) {
  std::string pts;
  auto add = [&](const XY& p) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) return;
    if (!pts.empty()) pts += ' ';
    pts += coord(px(p.x)) + "," + coord(py(p.y));
  };
  for (const XY& p : upper) add(p);
  for (auto it = lower.rbegin(); it != lower.rend(); ++it) add(*it);
  if (pts.empty()) return;
  body_ += "<polygon class=\"" + css_class + "\" points=\"" + pts + "\"/>\n";
}

void SvgPlot::point(XY p, double radius, const std::string& css_class, const std::string& attrs,
                    const std::string& tooltip, bool right_axis) {
  if (!std::isfinite(p.x) || !std::isfinite(p.y)) return;
  body_ += "<circle class=\"mark " + css_class + "\" cx=\"" + coord(px(p.x)) + "\" cy=\"" +
           coord(py(p.y, right_axis)) + "\" r=\"" + coord(radius) + "\"" +
           (attrs.empty() ? "" : " " + attrs);
  if (tooltip.empty()) {
    body_ += "/>\n";
  } else {
    body_ += "><title>" + html_escape(tooltip) + "</title></circle>\n";
  }
}

void SvgPlot::error_bar(double x, double lo, double hi, const std::string& css_class) {
  if (!std::isfinite(x) || !std::isfinite(lo) || !std::isfinite(hi)) return;
  const std::string cx = coord(px(x)), x0 = coord(px(x) - 3.5), x1 = coord(px(x) + 3.5);
  const std::string y0 = coord(py(lo)), y1 = coord(py(hi));
  body_ += "<path class=\"" + css_class + "\" d=\"M" + cx + "," + y0 + "V" + y1 + "M" + x0 + "," +
           y0 + "H" + x1 + "M" + x0 + "," + y1 + "H" + x1 + "\"/>\n";
}

void SvgPlot::guide(XY a, XY b, const std::string& css_class, const std::string& text) {
  body_ += "<line class=\"" + css_class + "\" x1=\"" + coord(px(a.x)) + "\" y1=\"" +
           coord(py(a.y)) + "\" x2=\"" + coord(px(b.x)) + "\" y2=\"" + coord(py(b.y)) + "\"/>\n";
  if (!text.empty()) {
    // Above the end of the segment, or below it when that would leave the plot (a baseline near 1).
    const double above = py(b.y) - 5;
    const double y = above - 0.8 * kGuideFontPx < top_ ? py(b.y) + 5 + 0.8 * kGuideFontPx : above;
    const double x = px(b.x) - 4;
    if (x - text_width_px(text, kGuideFontPx) >= left_) {
      text_px(x, y, text, "guide-label", "end");
    } else {
      label_px(x, y, 0, text, "guide-label", kGuideFontPx);
    }
  }
}

void SvgPlot::vline(double x, const std::string& css_class, const std::string& text) {
  const std::string cx = coord(px(x));
  body_ += "<line class=\"" + css_class + "\" x1=\"" + cx + "\" y1=\"" + coord(top_) + "\" x2=\"" +
           cx + "\" y2=\"" + coord(top_ + plot_height()) + "\"/>\n";
  if (!text.empty()) label_px(px(x), top_ + 12, 4, text, "guide-label", kGuideFontPx);
}

void SvgPlot::text_px(double x, double y, const std::string& text, const std::string& css_class,
                      const std::string& anchor) {
  overlay_ += "<text class=\"" + css_class + "\" x=\"" + coord(x) + "\" y=\"" + coord(y) +
              "\" text-anchor=\"" + anchor + "\">" + html_escape(text) + "</text>\n";
}

void SvgPlot::label_px(double x, double y, double gap, const std::string& text,
                       const std::string& css_class, double font_px) {
  constexpr double kInset = 3.0;  // keep the label off the frame
  const double lo = left_ + kInset, hi = left_ + plot_width() - kInset;
  const double w = text_width_px(text, font_px);
  std::string anchor = "start";
  if (x + gap + w <= hi) {
    x += gap;
  } else if (x - gap - w >= lo) {
    x -= gap;
    anchor = "end";
  } else {
    x = std::max(lo, hi - w);  // wider than either side: as far right as fits, never past the left
  }
  // A line of text reaches about 0.8 em above its baseline and 0.25 em below.
  y = std::clamp(y, top_ + kInset + 0.8 * font_px, top_ + plot_height() - kInset - 0.25 * font_px);
  text_px(x, y, text, css_class, anchor);
}

void SvgPlot::raw(const std::string& svg) { body_ += svg; }

void SvgPlot::legend(const std::vector<LegendEntry>& entries, Corner corner) {
  if (entries.empty()) return;
  if (corner == Corner::kBelow) {
    legend_below(entries);
    return;
  }
  size_t longest = 0;
  for (const LegendEntry& e : entries) longest = std::max(longest, e.label.size());
  const double row = 17.0, pad = 7.0, swatch_w = 22.0;
  const double w = pad * 2 + swatch_w + 6 + kCharWidth * static_cast<double>(longest);
  const double h = pad * 2 + row * static_cast<double>(entries.size()) - 4;
  const bool left = corner == Corner::kTopLeft || corner == Corner::kBottomLeft;
  const bool top = corner == Corner::kTopLeft || corner == Corner::kTopRight;
  const double x0 = left ? left_ + 8 : left_ + plot_width() - w - 8;
  const double y0 = top ? top_ + 8 : top_ + plot_height() - h - 8;
  std::string s = "<g class=\"legend\"><rect class=\"legend-box\" x=\"" + coord(x0) + "\" y=\"" +
                  coord(y0) + "\" width=\"" + coord(w) + "\" height=\"" + coord(h) +
                  "\" rx=\"3\"/>\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    const double cy = y0 + pad + row * static_cast<double>(i) + 6.5;
    const double sx = x0 + pad;
    s += swatch(e, sx, cy, swatch_w);
    s += "<text class=\"legend-text\" x=\"" + coord(sx + swatch_w + 6) + "\" y=\"" + coord(cy + 4) +
         "\">" + html_escape(e.label) + "</text>\n";
  }
  s += "</g>\n";
  overlay_ += s;
}

std::string SvgPlot::swatch(const LegendEntry& e, double x, double cy, double w) const {
  if (e.kind == "band" || e.kind == "bar") {
    return "<rect class=\"" + e.css_class + "\" x=\"" + coord(x) + "\" y=\"" + coord(cy - 5) +
           "\" width=\"" + coord(w) + "\" height=\"10\"/>";
  }
  if (e.kind == "point") {
    return "<circle class=\"" + e.css_class + "\" cx=\"" + coord(x + w / 2) + "\" cy=\"" +
           coord(cy) + "\" r=\"4.5\"/>";
  }
  return "<line class=\"" + e.css_class + "\" x1=\"" + coord(x) + "\" y1=\"" + coord(cy) +
         "\" x2=\"" + coord(x + w) + "\" y2=\"" + coord(cy) + "\"/>";
}

void SvgPlot::legend_below(const std::vector<LegendEntry>& entries) {
  // The plot area keeps its size: the SVG grows by one row, so marks already placed stay put.
  const double swatch_w = 22.0, gap = 18.0, row = 24.0;
  double total = 0.0;
  for (const LegendEntry& e : entries)
    total += swatch_w + 6 + kCharWidth * static_cast<double>(e.label.size()) + gap;
  total -= gap;
  double x = std::max(4.0, (width_ - total) / 2);
  const double cy = top_ + plot_height() + bottom_ + 6;
  std::string s = "<g class=\"legend\">";
  for (const LegendEntry& e : entries) {
    s += swatch(e, x, cy, swatch_w);
    s += "<text class=\"legend-text\" x=\"" + coord(x + swatch_w + 6) + "\" y=\"" + coord(cy + 4) +
         "\">" + html_escape(e.label) + "</text>";
    x += swatch_w + 6 + kCharWidth * static_cast<double>(e.label.size()) + gap;
  }
  s += "</g>\n";
  overlay_ += s;
  bottom_ += row;
  height_ += row;
}

std::string SvgPlot::axis_markup() const {
  std::string s = "<g class=\"grid\">";
  const double x_end = left_ + plot_width(), y_end = top_ + plot_height();
  const int nx = tick_count(x_), ny = tick_count(y_);
  for (int i = 0; i <= nx; ++i) {
    const std::string x = coord(px(x_.lo + i * x_.step));
    s += "<line x1=\"" + x + "\" y1=\"" + coord(top_) + "\" x2=\"" + x + "\" y2=\"" + coord(y_end) +
         "\"/>";
  }
  for (int i = 0; i <= ny; ++i) {
    const std::string y = coord(py(y_.lo + i * y_.step));
    s += "<line x1=\"" + coord(left_) + "\" y1=\"" + y + "\" x2=\"" + coord(x_end) + "\" y2=\"" +
         y + "\"/>";
  }
  s += "</g>\n<g class=\"axes\">";
  s += "<rect class=\"frame\" x=\"" + coord(left_) + "\" y=\"" + coord(top_) + "\" width=\"" +
       coord(plot_width()) + "\" height=\"" + coord(plot_height()) + "\"/>";
  for (int i = 0; i <= nx; ++i) {
    const double v = x_.lo + i * x_.step;
    const std::string x = coord(px(v));
    s += "<line x1=\"" + x + "\" y1=\"" + coord(y_end) + "\" x2=\"" + x + "\" y2=\"" +
         coord(y_end + kTickLength) + "\"/><text class=\"tick\" x=\"" + x + "\" y=\"" +
         coord(y_end + 17) + "\" text-anchor=\"middle\">" + tick_label(v, x_) + "</text>";
  }
  for (int i = 0; i <= ny; ++i) {
    const double v = y_.lo + i * y_.step;
    const std::string y = coord(py(v));
    s += "<line x1=\"" + coord(left_ - kTickLength) + "\" y1=\"" + y + "\" x2=\"" + coord(left_) +
         "\" y2=\"" + y + "\"/><text class=\"tick\" x=\"" + coord(left_ - 8) + "\" y=\"" +
         coord(py(v) + 4) + "\" text-anchor=\"end\">" + tick_label(v, y_) + "</text>";
  }
  if (has_y2_) {
    const int n2 = tick_count(y2_);
    for (int i = 0; i <= n2; ++i) {
      const double v = y2_.lo + i * y2_.step;
      const std::string y = coord(py(v, true));
      s += "<line x1=\"" + coord(x_end) + "\" y1=\"" + y + "\" x2=\"" + coord(x_end + kTickLength) +
           "\" y2=\"" + y + "\"/><text class=\"tick y2\" x=\"" + coord(x_end + 8) + "\" y=\"" +
           coord(py(v, true) + 4) + "\" text-anchor=\"start\">" + tick_label(v, y2_) + "</text>";
    }
    const double mid = top_ + plot_height() / 2;
    s += "<text class=\"axis-label y2\" transform=\"translate(" + coord(width_ - 10) + "," +
         coord(mid) + ") rotate(90)\" text-anchor=\"middle\">" + html_escape(y2_.label) + "</text>";
  }
  s += "<text class=\"axis-label\" x=\"" + coord(left_ + plot_width() / 2) + "\" y=\"" +
       coord(y_end + 38) + "\" text-anchor=\"middle\">" + html_escape(x_.label) + "</text>";
  s += "<text class=\"axis-label\" transform=\"translate(16," + coord(top_ + plot_height() / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(y_.label) + "</text>";
  s += "</g>\n";
  return s;
}

std::string SvgPlot::render(const std::string& marks_kind, const std::string& description) const {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" viewBox=\"0 0 " +
                  coord(width_) + " " + coord(height_) + "\" role=\"img\" aria-label=\"" +
                  html_escape(description) + "\" data-marks=\"" + html_escape(marks_kind) +
                  "\" data-plot=\"" + coord(left_) + " " + coord(top_) + " " + coord(plot_width()) +
                  " " + coord(plot_height()) + "\">\n";
  s += "<title>" + html_escape(title_) + "</title>\n";
  s += "<text class=\"plot-title\" x=\"" + coord(width_ / 2) +
       "\" y=\"22\" text-anchor=\"middle\">" + html_escape(title_) + "</text>\n";
  s += axis_markup();
  s += "<g class=\"data\">\n" + body_ + "</g>\n";
  s += overlay_;
  s += "</svg>";
  return s;
}

}  // namespace wristssl::report
