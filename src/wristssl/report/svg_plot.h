#pragma once
// A small inline-SVG plotting helper for the HTML report: linear axes with ticks, grid and labels,
// a title, data lines, bands, points, error bars and a legend. Styling is by CSS class (the page's
// stylesheet), so the SVG itself stays small. Every data mark carries class "mark", which the
// page's render check counts.

#include <string>
#include <string_view>
#include <vector>

namespace wristssl::report {

/// Escapes text for HTML / SVG content and attribute values: & < > " ' become entities.
std::string html_escape(std::string_view text);

/// printf("%.<decimals>f"), or "n/a" for NaN / infinity.
std::string fixed(double value, int decimals);

/// Estimated advance of `text` (UTF-8) set at `font_px`: 0.6 em per character, about the average of
/// a bold sans-serif, so the estimate errs wide. Used to keep labels inside the plot.
double text_width_px(std::string_view text, double font_px);

/// One linear axis: the range shown, the tick spacing and the label under (or beside) it.
struct Axis {
  double lo = 0.0;
  double hi = 1.0;
  double step = 0.2;  // tick spacing, > 0
  std::string label;
  bool percent = false;  // tick labels as value * 100 followed by %
};

/// An axis covering [min, max] with about `ticks` intervals of 1, 2 or 5 x 10^k; `min_step` bounds
/// the step from below (1 for epochs). A degenerate range is widened around its value.
Axis nice_axis(double min, double max, int ticks, std::string label, double min_step = 0.0);

/// A point in data coordinates.
struct XY {
  double x = 0.0;
  double y = 0.0;
};

/// One legend row: `kind` is "line", "band", "point" or "bar"; `css_class` styles the swatch like
/// the mark.
struct LegendEntry {
  std::string label;
  std::string kind;
  std::string css_class;
};

/// Where a legend goes: a corner inside the plot area, or one row below the x-axis label (the SVG
/// grows).
enum class Corner { kTopLeft, kTopRight, kBottomLeft, kBottomRight, kBelow };

/// One plot: construct with axes, add marks in data coordinates, then render() to an `<svg>`
/// string.
class SvgPlot {
 public:
  /// `width` x `height` is the viewBox in px; the plot area leaves margins for title, ticks and
  /// labels.
  SvgPlot(std::string title, Axis x, Axis y, int width = 520, int height = 380);

  /// Adds a right-hand axis; marks drawn with `right_axis` = true use it.
  void set_y2(Axis y2);

  double px(double x) const;                           // data x -> pixel x
  double py(double y, bool right_axis = false) const;  // data y -> pixel y
  double plot_left() const { return left_; }
  double plot_top() const { return top_; }
  double plot_width() const { return width_ - left_ - right_; }
  double plot_height() const { return height_ - top_ - bottom_; }

  /// A data polyline (class "mark"); NaN points are skipped. `attrs` is raw, pre-escaped attribute
  /// text.
  void line(const std::vector<XY>& points, const std::string& css_class,
            const std::string& attrs = "", bool right_axis = false);
  /// A filled band between `lower` and `upper` (same x), e.g. a bootstrap interval.
  void band(const std::vector<XY>& lower, const std::vector<XY>& upper,
            const std::string& css_class);
  /// A data point (class "mark"); `tooltip` becomes an SVG <title>.
  void point(XY p, double radius, const std::string& css_class, const std::string& attrs = "",
             const std::string& tooltip = "", bool right_axis = false);
  /// A vertical error bar from lo to hi at x, with caps.
  void error_bar(double x, double lo, double hi, const std::string& css_class);
  /// A reference segment (diagonal, baseline); not a data mark.
  void guide(XY a, XY b, const std::string& css_class, const std::string& text = "");
  /// A full-height vertical marker at x with a label at the top.
  void vline(double x, const std::string& css_class, const std::string& text);
  /// Text at pixel coordinates; anchor is "start", "middle" or "end".
  void text_px(double x, double y, const std::string& text, const std::string& css_class,
               const std::string& anchor = "start");
  /// A label beside pixel (x, y) that stays inside the plot area: anchored "start" at x + gap when
  /// its estimated width (text_width_px at `font_px`) fits to the right, else "end" at x - gap when
  /// it fits to the left, else "start" against the left edge. The baseline y is clamped so the line
  /// stays inside.
  void label_px(double x, double y, double gap, const std::string& text,
                const std::string& css_class, double font_px);
  /// Pre-built SVG markup, inserted as is (caller escapes).
  void raw(const std::string& svg);
  void legend(const std::vector<LegendEntry>& entries, Corner corner);

  /// The `<svg>` element. `marks_kind` ("curve", "points", "cells") tells the render check what to
  /// expect; `description` is the accessible label.
  std::string render(const std::string& marks_kind, const std::string& description) const;

 private:
  std::string axis_markup() const;
  std::string swatch(const LegendEntry& e, double x, double cy, double w) const;
  void legend_below(const std::vector<LegendEntry>& entries);

  std::string title_;
  Axis x_, y_, y2_;
  bool has_y2_ = false;
  double width_, height_;
  double left_ = 62.0, right_ = 18.0, top_ = 36.0, bottom_ = 50.0;
  std::string body_;
  std::string overlay_;  // drawn last (legend, labels)
};

}  // namespace wristssl::report
