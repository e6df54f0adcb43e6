#include "wristssl/report/html_report.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstdint>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_paths.h"
#include "wristssl/io/read_image.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/report/heatmap.h"
#include "wristssl/report/png_thumb.h"
#include "wristssl/report/svg_plot.h"
#include "wristssl/util/fs.h"

namespace wristssl::report {
namespace {

// 24 fractures and 16 normal images. At threshold 0.5: 21 of 24 fractures score above (tp 21, fn 3)
// and 2 of 16 normals do (fp 2, tn 14), so fpr = 0.125 and tpr = 0.875 exactly.
struct Synthetic {
  std::vector<int> labels;
  std::vector<double> scores;
};

Synthetic make_synthetic() {
  Synthetic s;
  for (int i = 0; i < 24; ++i) {
    s.labels.push_back(1);
    s.scores.push_back(i < 21 ? 0.55 + 0.02 * i
                              : 0.1 + 0.1 * (i - 21));  // 0.55..0.95; 0.1, 0.2, 0.3
  }
  for (int i = 0; i < 16; ++i) {
    s.labels.push_back(0);
    s.scores.push_back(i < 2 ? 0.6 + 0.2 * i : 0.02 + 0.025 * (i - 2));  // 0.6, 0.8; 0.02..0.345
  }
  return s;
}

// Counted here, independently of the metrics library.
metrics::Confusion count_confusion(const Synthetic& s, double threshold) {
  metrics::Confusion c;
  for (size_t i = 0; i < s.labels.size(); ++i) {
    const bool flagged = s.scores[i] >= threshold;
    if (s.labels[i] == 1) {
      (flagged ? c.tp : c.fn)++;
    } else {
      (flagged ? c.fp : c.tn)++;
    }
  }
  return c;
}

nlohmann::json metrics_json(const Synthetic& s) {
  metrics::ReportOptions opt;
  opt.threshold = 0.5;
  opt.threshold_source = "frozen: youden on validation";
  opt.bootstrap = 200;
  opt.seed = 3;
  return metrics::compute_report(s.labels, s.scores, {}, opt).to_json();
}

ReportInputs make_inputs() {
  ReportInputs in;
  in.title = "wristssl: fracture detection report";
  in.test_metrics = metrics_json(make_synthetic());
  in.threshold_rule = "youden";
  for (int e = 1; e <= 6; ++e) {
    in.history.push_back({e, e <= 2 ? "probe" : "finetune", 0.7 - 0.05 * e, 0.72 - 0.04 * e,
                          0.7 + 0.03 * e, 0.75 + 0.03 * e});
  }
  for (int e = 1; e <= 10; ++e) {
    in.pretrain.push_back({e, 6.0 - 0.15 * e, e % 5 == 0 ? 0.6 + 0.02 * e : std::nan("")});
  }
  in.false_negatives.push_back({"a<b>&\"c\".png", 1, 0.1, "", ""});
  in.false_positives.push_back(
      {"neg/x.png", 0, 0.8, png8_base64(std::vector<float>(16, 0.5f), 4, 4), ""});
  in.run_info = {{"dataset", "<script>alert(1)</script>"},
                 {"seed", 7},
                 {"command", "wristssl eval --x 'a&b'"}};
  in.disclaimer = "Research use only; not a medical device.";
  return in;
}

std::string strip_tags(const std::string& html) {
  std::string out = std::regex_replace(html, std::regex("<[^>]*>"), "");
  return std::regex_replace(out, std::regex("\\s+"), " ");
}

// The markup of `<figure id="ID" ...> ... </figure>`.
std::string figure_markup(const std::string& html, const std::string& id) {
  const size_t begin = html.find("<figure id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  const size_t end = html.find("</figure>", begin);
  return html.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::string attr(const std::string& tag, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\""))) return "";
  return m[1];
}

// A decoder written apart from the library's, so that the encoder is checked against something independent.
std::string independent_base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) throw std::invalid_argument(std::string("bad base64 character ") + c);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

TEST(HtmlReport, HasEveryFigureWithAnSvg) {
  const std::string html = render_report_html(make_inputs());
  ASSERT_EQ(report_figure_ids().size(), 6u);
  for (const std::string& id : report_figure_ids()) {
    const std::string fig = figure_markup(html, id);
    ASSERT_FALSE(fig.empty()) << id;
    EXPECT_NE(fig.find("<svg"), std::string::npos) << id;
    EXPECT_NE(fig.find("class=\"mark"), std::string::npos) << id << " has no data marks";
  }
  EXPECT_NE(html.find("<div id=\"render-check\""), std::string::npos);
  EXPECT_NE(html.find("plots-ok:"), std::string::npos);
}

TEST(HtmlReport, IsSelfContained) {
  std::string html = render_report_html(make_inputs());
  const std::string xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
  for (size_t at = html.find(xmlns); at != std::string::npos; at = html.find(xmlns))
    html.erase(at, xmlns.size());
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  // Every src= is a data: URI, every url( an in-page reference.
  for (size_t at = html.find("src=\""); at != std::string::npos; at = html.find("src=\"", at + 1)) {
    EXPECT_EQ(html.compare(at, 16, "src=\"data:image/"), 0) << html.substr(at, 40);
  }
  for (size_t at = html.find("url("); at != std::string::npos; at = html.find("url(", at + 1)) {
    EXPECT_EQ(html.compare(at, 5, "url(#"), 0) << html.substr(at, 40);
  }
}

TEST(HtmlReport, EscapesUserText) {
  ReportInputs in = make_inputs();
  in.title = "Report <b>&</b>";
  in.threshold_rule = "sensitivity:0.95\"><i>";
  const std::string html = render_report_html(in);
  EXPECT_NE(html.find("a&lt;b&gt;&amp;&quot;c&quot;.png"), std::string::npos);
  EXPECT_EQ(html.find("a<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("wristssl eval --x &#39;a&amp;b&#39;"), std::string::npos);
  EXPECT_NE(html.find("<title>Report &lt;b&gt;&amp;&lt;/b&gt;</title>"), std::string::npos);
  EXPECT_EQ(html.find("0.95\"><i>"), std::string::npos);
  EXPECT_EQ(html_escape("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
}

TEST(HtmlReport, RejectsThumbnailThatIsNotBase64) {
  ReportInputs in = make_inputs();
  in.false_positives[0].thumbnail_png_base64 = "AAAA\" onerror=\"alert(1)";
  const std::string html = render_report_html(in);
  EXPECT_EQ(html.find("onerror"), std::string::npos);
  EXPECT_NE(html.find("no thumbnail"), std::string::npos);
}

TEST(HtmlReport, SummaryStatesTheCounts) {
  const Synthetic s = make_synthetic();
  const metrics::Confusion c = count_confusion(s, 0.5);
  ASSERT_EQ(c.tp, 21);
  ASSERT_EQ(c.fn, 3);
  ASSERT_EQ(c.fp, 2);
  ASSERT_EQ(c.tn, 14);
  ReportInputs in = make_inputs();
  const nlohmann::json& conf = in.test_metrics["confusion"];
  ASSERT_EQ(conf["tp"].get<int64_t>(), c.tp);
  ASSERT_EQ(conf["fn"].get<int64_t>(), c.fn);
  const std::string text = strip_tags(render_report_html(in));
  EXPECT_NE(
      text.find("Of 24 fractures in the test set, the model found 21 (sensitivity 87.5%, 95% CI "),
      std::string::npos)
      << text.substr(0, 3000);
  EXPECT_NE(
      text.find(
          "Of 16 images without a fracture, the model correctly cleared 14 (specificity 87.5%"),
      std::string::npos);
  EXPECT_NE(text.find("Of 23 images the model flagged as fracture, 21 had one"), std::string::npos);
  EXPECT_NE(text.find("Of 17 images the model cleared, 14 had no fracture"), std::string::npos);
  EXPECT_NE(text.find("raised 2 false alarms"), std::string::npos);
  // Sensitivity 21/24 with its Wilson interval, printed as in the metrics JSON.
  const metrics::Estimate w = metrics::wilson_interval(21, 24);
  char ci[64];
  std::snprintf(ci, sizeof(ci), "%.1f&ndash;%.1f%%", w.lo * 100, w.hi * 100);
  EXPECT_NE(text.find(std::string("sensitivity 87.5%, 95% CI ") + ci), std::string::npos) << ci;
}

TEST(HtmlReport, OperatingPointSitsAtTheConfusionRates) {
  const std::string html = render_report_html(make_inputs());
  const std::string roc = figure_markup(html, "fig-roc");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(roc, m, std::regex("<circle class=\"mark op\"[^>]*>")));
  const std::string circle = m[0];
  EXPECT_EQ(attr(circle, "data-fpr"), "0.125");
  EXPECT_EQ(attr(circle, "data-tpr"), "0.875");
  EXPECT_EQ(attr(circle, "data-threshold"), "0.5");
  // The pixel position agrees with the plot box: x = left + fpr * width, y = top + (1 - tpr) *
  // height.
  ASSERT_TRUE(std::regex_search(roc, m, std::regex("<svg [^>]*>")));
  double left = 0, top = 0, width = 0, height = 0;
  ASSERT_EQ(
      std::sscanf(attr(m[0], "data-plot").c_str(), "%lf %lf %lf %lf", &left, &top, &width, &height),
      4);
  EXPECT_NEAR(std::stod(attr(circle, "cx")), left + 0.125 * width, 0.06);
  EXPECT_NEAR(std::stod(attr(circle, "cy")), top + (1 - 0.875) * height, 0.06);
  // ... and lies on the drawn ROC: (0.125, 0.875) is a vertex of the curve for these scores.
  ASSERT_TRUE(
      std::regex_search(roc, m, std::regex("<polyline class=\"mark s1\" points=\"([^\"]*)\"")));
  char vertex[64];
  std::snprintf(vertex, sizeof(vertex), "%.1f,%.1f", left + 0.125 * width, top + 0.125 * height);
  EXPECT_NE(std::string(m[1]).find(vertex), std::string::npos) << vertex;
}

TEST(HtmlReport, ConfusionGridShowsCountsAndRowPercentages) {
  const std::string fig = figure_markup(render_report_html(make_inputs()), "fig-confusion");
  int cells = 0;
  for (size_t at = fig.find("<rect class=\"mark cell\""); at != std::string::npos;
       at = fig.find("<rect class=\"mark cell\"", at + 1)) {
    ++cells;
  }
  EXPECT_EQ(cells, 4);
  const std::string text = strip_tags(fig);
  for (const char* want : {">21<", ">3<", ">2<", ">14<"})
    EXPECT_NE(fig.find(want), std::string::npos) << want;
  EXPECT_NE(text.find("87.5% of row"), std::string::npos);  // 21 / 24 and 14 / 16
  EXPECT_NE(text.find("12.5% of row"), std::string::npos);  // 3 / 24 and 2 / 16
}

TEST(HtmlReport, NotesInsteadOfPlotsWhenDataIsAbsent) {
  ReportInputs in = make_inputs();
  in.test_metrics["calibration"] = nullptr;
  in.pretrain.clear();
  const std::string html = render_report_html(in);
  const std::string cal = figure_markup(html, "fig-calibration");
  ASSERT_FALSE(cal.empty());
  EXPECT_EQ(cal.find("<svg"), std::string::npos);
  EXPECT_NE(cal.find("data-note=\"1\""), std::string::npos);
  EXPECT_NE(cal.find("calibration: null"), std::string::npos);
  const std::string pre = figure_markup(html, "fig-pretrain");
  EXPECT_NE(pre.find("random initialisation (no pretraining)"), std::string::npos);
  EXPECT_EQ(pre.find("<svg"), std::string::npos);
}

TEST(HtmlReport, CalibrationPlotCarriesEceAndBinCounts) {
  const ReportInputs in = make_inputs();
  const std::string fig = figure_markup(render_report_html(in), "fig-calibration");
  char ece[32];
  std::snprintf(ece, sizeof(ece), "ECE %.3f", in.test_metrics["calibration"]["ece"].get<double>());
  EXPECT_NE(fig.find(ece), std::string::npos) << ece;
  int64_t counted = 0;
  const std::regex count_attr("data-count=\"(\\d+)\"");
  for (std::sregex_iterator it(fig.begin(), fig.end(), count_attr), end; it != end; ++it) {
    counted += std::stoll((*it)[1]);
  }
  EXPECT_EQ(counted, 40);  // every image falls in some non-empty bin
}

TEST(HtmlReport, HistoryMarksThePhaseSwitchAndValidationColumn) {
  ReportInputs in = make_inputs();
  in.val_metrics = in.test_metrics;
  const std::string html = render_report_html(in);
  const std::string hist = figure_markup(html, "fig-history");
  EXPECT_NE(hist.find("phase-line"), std::string::npos);
  EXPECT_NE(hist.find("fine-tuning"), std::string::npos);
  EXPECT_NE(html.find("Validation (95% CI)"), std::string::npos);
}

TEST(HtmlReport, RendersSparseInputs) {
  ReportInputs in = make_inputs();
  in.history = {{1, "finetune", 0.5, 0.6, 0.7, 0.8}};
  in.pretrain = {{1, 5.9, std::nan("")}};
  in.false_negatives.clear();
  in.false_positives.clear();
  in.run_info = nullptr;
  in.disclaimer.clear();
  const std::string html = render_report_html(in);
  for (const std::string& id : report_figure_ids()) {
    EXPECT_NE(html.find("<figure id=\"" + id + "\""), std::string::npos) << id;
  }
  // One epoch is a point, not a curve: the render check must not expect a line.
  EXPECT_NE(figure_markup(html, "fig-history").find("data-marks=\"points\""), std::string::npos);
  EXPECT_NE(figure_markup(html, "fig-pretrain").find("data-marks=\"points\""), std::string::npos);
  EXPECT_NE(html.find("No missed fractures to show."), std::string::npos);
  EXPECT_NE(html.find("No false alarms to show."), std::string::npos);
  EXPECT_NE(html.find("No run information was recorded."), std::string::npos);
  EXPECT_EQ(html.find("class=\"disclaimer\""), std::string::npos);
}

TEST(HtmlReport, RejectsInputsThatAreNotMetricsReports) {
  ReportInputs in = make_inputs();
  in.test_metrics = nlohmann::json::object();
  EXPECT_THROW(render_report_html(in), std::invalid_argument);
  in = make_inputs();
  in.val_metrics = {{"schema", "something/2"}};
  EXPECT_THROW(render_report_html(in), std::invalid_argument);
}

TEST(HtmlReport, WriteReportWritesThePage) {
  const ReportInputs in = make_inputs();
  const std::string path = testing::temp_dir("report") + "/sub/report.html";
  write_report(path, in);
  EXPECT_EQ(util::read_text(path), render_report_html(in));
}

// ---- Labels stay inside the plot

struct Box {
  double left = 0, top = 0, width = 0, height = 0;
};

Box plot_box(const std::string& svg_tag) {
  Box b;
  EXPECT_EQ(std::sscanf(attr(svg_tag, "data-plot").c_str(), "%lf %lf %lf %lf", &b.left, &b.top,
                        &b.width, &b.height),
            4)
      << svg_tag;
  return b;
}

// Every <text> of `css_class` in each plot of `fig` lies inside that plot's area, its width
// estimated at 0.6 em per character (wider than the 6 px per character of a 12 px sans-serif).
// Returns how many.
int expect_labels_inside(const std::string& fig, const std::string& css_class, double font_px,
                         const std::string& what) {
  int checked = 0;
  const std::regex svg_re("<svg [^>]*>[\\s\\S]*?</svg>");
  const std::regex text_re("<text class=\"" + css_class + "\"([^>]*)>([^<]*)</text>");
  for (std::sregex_iterator s(fig.begin(), fig.end(), svg_re), end; s != end; ++s) {
    const std::string svg = (*s)[0];
    const Box b = plot_box(svg.substr(0, svg.find('>') + 1));
    for (std::sregex_iterator t(svg.begin(), svg.end(), text_re); t != end; ++t) {
      const std::string tag = (*t)[1], text = (*t)[2];
      const double x = std::stod(attr(tag, "x")), y = std::stod(attr(tag, "y"));
      const std::string anchor =
          attr(tag, "text-anchor").empty() ? "start" : attr(tag, "text-anchor");
      // Entities (&amp;) and UTF-8 sequences count as one character each.
      size_t chars = 0;
      for (size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
        if (text[i] == '&') i = text.find(';', i);
        ++chars;
      }
      const double w = 0.6 * font_px * static_cast<double>(chars);
      const double x0 = anchor == "end" ? x - w : anchor == "middle" ? x - w / 2 : x;
      EXPECT_GE(x0, b.left) << what << ": '" << text << "' starts left of the plot (x " << x << ", "
                            << anchor << ")";
      EXPECT_LE(x0 + w, b.left + b.width) << what << ": '" << text << "' ends right of the plot";
      EXPECT_GE(y - 0.8 * font_px, b.top) << what << ": '" << text << "' above the plot";
      EXPECT_LE(y, b.top + b.height) << what << ": '" << text << "' below the plot";
      ++checked;
    }
  }
  return checked;
}

TEST(HtmlReport, OperatingPointLabelStaysInsideTheRocPlot) {
  // The label used to run off the left edge ("hold 0.5866: sens ...") when the dot sat mid-plot.
  for (double fpr : {0.0, 0.05, 0.3, 0.45, 0.5, 0.55, 0.7, 0.95, 1.0}) {
    for (double tpr : {0.0, 0.02, 0.5, 0.98, 1.0}) {
      ReportInputs in = make_inputs();
      const int64_t tp = std::llround(tpr * 100), fp = std::llround(fpr * 100);
      in.test_metrics["confusion"] = {{"tp", tp}, {"fn", 100 - tp}, {"fp", fp}, {"tn", 100 - fp}};
      in.test_metrics["threshold"] = 0.5866;
      const std::string roc = figure_markup(render_report_html(in), "fig-roc");
      const std::string what = "fpr " + std::to_string(fpr) + ", tpr " + std::to_string(tpr);
      ASSERT_NE(roc.find(">threshold 0.5866: sens "), std::string::npos) << what;
      EXPECT_EQ(expect_labels_inside(roc, "op-label", 12.0, what), 1) << what;
    }
  }
}

TEST(HtmlReport, GuideLabelsStayInsideTheirPlots) {
  ReportInputs in = make_inputs();
  // The phase switch at the last epoch puts its label against the right edge.
  in.history = {{1, "probe", 0.6, 0.6, 0.7, 0.7},
                {2, "probe", 0.5, 0.55, 0.72, 0.75},
                {3, "finetune", 0.4, 0.5, 0.8, 0.82}};
  const std::string html = render_report_html(in);
  EXPECT_GE(
      expect_labels_inside(figure_markup(html, "fig-history"), "guide-label", 11.0, "history"), 1);
  // A prevalence near 1 puts the baseline's label against the top edge.
  Synthetic s = make_synthetic();
  for (int& l : s.labels) l = 1;
  s.labels[39] = 0;
  in.test_metrics = metrics_json(s);
  EXPECT_EQ(expect_labels_inside(figure_markup(render_report_html(in), "fig-pr"), "guide-label",
                                 11.0, "pr"),
            1);
}

TEST(SvgPlot, LabelPicksTheSideWhereItFits) {
  SvgPlot plot("t", Axis{}, Axis{});  // 520 x 380: plot area x 62..502, y 36..330
  const std::string label(40, 'x');   // 40 * 7.2 = 288 px at 12 px
  EXPECT_DOUBLE_EQ(text_width_px(label, 12.0), 288.0);
  EXPECT_DOUBLE_EQ(text_width_px("\u2013a", 10.0), 12.0) << "a UTF-8 dash is one character";
  plot.label_px(100, 200, 10, label, "a", 12.0);  // fits to the right
  plot.label_px(450, 200, 10, label, "b", 12.0);  // fits to the left
  plot.label_px(282, 200, 10, label, "c", 12.0);  // fits neither: against the right edge
  plot.label_px(100, 400, 10, label, "d", 12.0);  // below the plot: clamped up
  plot.label_px(100, 0, 10, label, "e", 12.0);    // above the plot: clamped down
  const std::string svg = plot.render("curve", "test");
  EXPECT_NE(svg.find("class=\"a\" x=\"110.0\" y=\"200.0\" text-anchor=\"start\""),
            std::string::npos);
  EXPECT_NE(svg.find("class=\"b\" x=\"440.0\" y=\"200.0\" text-anchor=\"end\""), std::string::npos);
  EXPECT_NE(svg.find("class=\"c\" x=\"211.0\" y=\"200.0\" text-anchor=\"start\""),
            std::string::npos)
      << "502 - 3 - 288 = 211";
  EXPECT_NE(svg.find("class=\"d\" x=\"110.0\" y=\"324.0\""), std::string::npos) << "330 - 3 - 3";
  EXPECT_NE(svg.find("class=\"e\" x=\"110.0\" y=\"48.6\""), std::string::npos) << "36 + 3 + 9.6";
}

// ---- Groups, calibration, referral band, external evaluation, Grad-CAM

TEST(HtmlReport, NamesTheGroupsAsTold) {
  const Synthetic s = make_synthetic();
  std::vector<std::string> groups;
  for (size_t i = 0; i < s.labels.size(); ++i) groups.push_back("c" + std::to_string(i / 2));
  metrics::ReportOptions opt;
  opt.threshold = 0.5;
  opt.bootstrap = 200;
  opt.seed = 3;
  ReportInputs in = make_inputs();
  in.test_metrics = metrics::compute_report(s.labels, s.scores, groups, opt).to_json();
  ASSERT_EQ(in.test_metrics["n_groups"], 20);

  EXPECT_EQ(in.group_name, "groups") << "the default";
  std::string text = strip_tags(render_report_html(in));
  EXPECT_NE(text.find("20 groups"), std::string::npos);

  in.group_name = "duplicate clusters";
  text = strip_tags(render_report_html(in));
  EXPECT_NE(text.find("Internal test split: 40 images, 24 with a fracture (60.0%), 20 duplicate "
                      "clusters"),
            std::string::npos)
      << text.substr(0, 600);
  EXPECT_NE(text.find("from 20 duplicate clusters"), std::string::npos);
  EXPECT_NE(text.find("bootstrap over duplicate clusters"), std::string::npos);
  EXPECT_NE(text.find("resampling duplicate clusters"), std::string::npos);
  EXPECT_EQ(text.find("patient"), std::string::npos) << "FracAtlas groups are not patients";

  in.group_name = "patients";
  text = strip_tags(render_report_html(in));
  EXPECT_NE(text.find(", 20 patients"), std::string::npos);
  EXPECT_NE(text.find("bootstrap over patients"), std::string::npos);

  // Without groups the bootstrap resamples images, and no group count is claimed.
  in = make_inputs();
  in.group_name = "patients";
  text = strip_tags(render_report_html(in));
  EXPECT_EQ(text.find("patients"), std::string::npos);
  EXPECT_NE(text.find("bootstrap over images"), std::string::npos);
}

TEST(HtmlReport, CalibrationFitIsOneSentence) {
  ReportInputs in = make_inputs();
  in.calibration = {{"method", "temperature"}, {"temperature", 1.7},        {"ece_before", 0.34},
                    {"ece_after", 0.08},       {"fitted_on", "validation"}, {"images", 157}};
  const std::string cal = figure_markup(render_report_html(in), "fig-calibration");
  EXPECT_NE(cal.find("Scores were calibrated by temperature scaling (T = 1.70) fitted on 157 "
                     "validation images; expected calibration error 0.340 before, 0.080 after."),
            std::string::npos)
      << cal.substr(cal.find("<figcaption>"));
  // Also when the reliability diagram itself cannot be drawn.
  in.test_metrics["calibration"] = nullptr;
  EXPECT_NE(render_report_html(in).find("Scores were calibrated by temperature scaling (T = 1.70)"),
            std::string::npos);
}

TEST(HtmlReport, ReferBandInPlainWords) {
  ReportInputs in = make_inputs();
  in.refer_band = {{"lo", 0.41},          {"hi", 0.62},         {"rule", "95% of <validation>"},
                   {"test_referred", 12}, {"test_images", 211}, {"accuracy_outside", 0.81}};
  const std::string html = render_report_html(in);
  const std::string summary = strip_tags(html.substr(html.find("<section id=\"summary\"")));
  EXPECT_NE(
      summary.find("Scores from 0.41 up to 0.62 are too uncertain to call: the model answers "
                   "&ldquo;refer to a radiologist&rdquo; instead (95% of &lt;validation&gt;)."),
      std::string::npos)
      << summary.substr(0, 4000);
  EXPECT_NE(
      summary.find("12 of 211 images (5.7%) fell in this band; on the other 199, the model was "
                   "right for 81.0%."),
      std::string::npos);
  // Accuracy unknown (no image outside the band): the count alone.
  in.refer_band["accuracy_outside"] = nullptr;
  EXPECT_NE(render_report_html(in).find("(5.7%) fell in this band.</p>"), std::string::npos);
}

TEST(HtmlReport, NullExtrasRenderNothingExtra) {
  const ReportInputs in = make_inputs();
  ASSERT_TRUE(in.calibration.is_null());
  ASSERT_TRUE(in.refer_band.is_null());
  ASSERT_TRUE(in.model_description.empty());
  const std::string html = render_report_html(in);
  for (const char* absent :
       {"Scores were calibrated", "Referral band", "refer to a radiologist", "class=\"calfit\"",
        "class=\"refer\"", "Model:", "never seen", "model bundle", "Grad-CAM", "class=\"cam\""}) {
    EXPECT_EQ(html.find(absent), std::string::npos) << absent;
  }
  // An empty object is treated as null.
  ReportInputs empty = in;
  empty.calibration = nlohmann::json::object();
  empty.refer_band = nlohmann::json::object();
  EXPECT_EQ(render_report_html(empty), html);
}

TEST(HtmlReport, ExternalEvaluationSaysSo) {
  ReportInputs in = make_inputs();
  in.model_description = "model.wristssl sha256 ab12<cd>; trained on FracAtlas";
  std::string text = strip_tags(render_report_html(in));
  EXPECT_EQ(in.evaluation_kind, "internal test split") << "the default";
  EXPECT_NE(text.find("Evaluation on the internal test split."), std::string::npos);
  EXPECT_NE(text.find("Internal test split: 40 images"), std::string::npos);
  EXPECT_NE(text.find("Model: model.wristssl sha256 ab12&lt;cd&gt;; trained on FracAtlas."),
            std::string::npos);
  EXPECT_EQ(text.find("never seen"), std::string::npos);
  EXPECT_NE(text.find("frozen before the test set was scored"), std::string::npos);

  in.evaluation_kind = "external evaluation";
  text = strip_tags(render_report_html(in));
  EXPECT_NE(text.find("External evaluation. These images were never seen by the model"),
            std::string::npos)
      << text.substr(0, 1500);
  EXPECT_NE(
      text.find("The threshold is the one frozen in the model bundle, not re-tuned on this data"),
      std::string::npos);
  EXPECT_NE(text.find("External evaluation: 40 images"), std::string::npos);
  EXPECT_NE(text.find("operating threshold 0.5 (frozen in the model bundle)"), std::string::npos);
  EXPECT_NE(text.find("the threshold frozen in the model bundle (rule youden on the model's own "
                      "validation set), not re-tuned on this data"),
            std::string::npos);
  EXPECT_EQ(text.find("frozen before the test set was scored"), std::string::npos);
  EXPECT_NE(text.find("Model: model.wristssl"), std::string::npos);
}

TEST(HtmlReport, GalleryShowsGradCamBesideTheThumbnail) {
  ReportInputs in = make_inputs();
  const int w = 8, h = 8;
  std::vector<float> grey(w * h, 0.4f), cam(w * h, 0.0f);
  cam[27] = cam[28] = 1.0f;
  const Overlay o = overlay_heatmap(grey, cam, w, h);
  const std::string heat = base64_encode(io::encode_rgb_png(o.rgb, o.width, o.height));
  in.false_positives[0].heatmap_png_base64 = heat;
  const std::string html = render_report_html(in);
  const size_t card = html.find("<figure class=\"thumb has-cam\">");
  ASSERT_NE(card, std::string::npos);
  const std::string markup = html.substr(card, html.find("</figure>", card) - card);
  const size_t thumb = markup.find("<img src=\"data:image/png;base64,");
  const size_t overlay =
      markup.find("<img class=\"cam\" src=\"data:image/png;base64," + heat + "\"");
  ASSERT_NE(thumb, std::string::npos);
  ASSERT_NE(overlay, std::string::npos);
  EXPECT_LT(thumb, overlay) << "the radiograph first, then its Grad-CAM";
  EXPECT_NE(markup.find("Grad-CAM: where the model looked (red = most evidence for fracture)"),
            std::string::npos);
  // Only the item with a map gets the wide card; a map that is not base64 is not shown at all.
  EXPECT_EQ(html.find("<figure class=\"thumb has-cam\">", card + 1), std::string::npos);
  EXPECT_NE(html.find("<figure class=\"thumb\">"), std::string::npos) << "the other item";
  in.false_positives[0].heatmap_png_base64 = "AAAA\" onerror=\"alert(1)";
  const std::string bad = render_report_html(in);
  EXPECT_EQ(bad.find("onerror"), std::string::npos);
  EXPECT_EQ(bad.find("<figure class=\"thumb has-cam\">"), std::string::npos);
  EXPECT_EQ(bad.find("Grad-CAM:"), std::string::npos);
}

TEST(PngThumb, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(PngThumb, Base64DecodeInvertsTheRfc4648Vectors) {
  for (const char* plain : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(base64_decode(base64_encode(plain)), plain);
  }
  EXPECT_EQ(base64_decode("/wD+"), std::string("\xff\x00\xfe", 3));
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy"), "foobar");  // line breaks are ignored
  EXPECT_THROW(base64_decode("Zm9v!"), std::invalid_argument);
}

TEST(PngThumb, Png8Base64DecodesToTheSameImage) {
  const int w = 7, h = 5;
  std::vector<float> pixels(w * h);
  for (int i = 0; i < w * h; ++i) pixels[i] = static_cast<float>(i) / (w * h - 1);
  pixels[3] = -0.5f;  // clamped to 0
  pixels[4] = 2.0f;   // clamped to 1
  const std::string png = independent_base64_decode(png8_base64(pixels, w, h));
  ASSERT_GE(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(be32(png, 8), 13u);  // IHDR length
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(be32(png, 16), static_cast<uint32_t>(w));
  EXPECT_EQ(be32(png, 20), static_cast<uint32_t>(h));
  EXPECT_EQ(static_cast<int>(png[24]), 8);  // bit depth
  EXPECT_EQ(static_cast<int>(png[25]), 0);  // colour type: grey
  // Decoded by the project's own PNG reader, every pixel is within half a grey level.
  const io::Image img =
      io::decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "thumb.png");
  ASSERT_EQ(img.info.width, w);
  ASSERT_EQ(img.info.height, h);
  for (int i = 0; i < w * h; ++i) {
    const float want = std::fmin(1.0f, std::fmax(0.0f, pixels[i]));
    EXPECT_NEAR(img.pixels[i], want, 0.5 / 255 + 1e-6) << "pixel " << i;
  }
}

TEST(PngThumb, RejectsMismatchedSizes) {
  EXPECT_THROW(png8_base64(std::vector<float>(10, 0.f), 3, 3), std::invalid_argument);
  EXPECT_THROW(png8_base64({}, 0, 0), std::invalid_argument);
}

TEST(SvgPlot, NiceAxisPicksRoundSteps) {
  const Axis a = nice_axis(0.13, 0.97, 5, "x");
  EXPECT_DOUBLE_EQ(a.lo, 0.0);
  EXPECT_DOUBLE_EQ(a.hi, 1.0);
  EXPECT_DOUBLE_EQ(a.step, 0.2);
  const Axis e = nice_axis(1, 7, 8, "epoch", 1.0);
  EXPECT_DOUBLE_EQ(e.step, 1.0);
  EXPECT_DOUBLE_EQ(e.lo, 1.0);
  EXPECT_DOUBLE_EQ(e.hi, 7.0);
  const Axis l = nice_axis(4.21, 6.13, 5, "loss");
  EXPECT_DOUBLE_EQ(l.step, 0.5);
  EXPECT_DOUBLE_EQ(l.lo, 4.0);
  EXPECT_DOUBLE_EQ(l.hi, 6.5);
  EXPECT_EQ(fixed(-0.00001, 1), "0.0");
  EXPECT_EQ(fixed(std::nan(""), 2), "n/a");
}

}  // namespace
}  // namespace wristssl::report
