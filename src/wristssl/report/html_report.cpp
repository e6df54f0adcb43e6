#include "wristssl/report/html_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "wristssl/report/svg_plot.h"
#include "wristssl/util/fs.h"

namespace wristssl::report {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kSchema = "wristssl.metrics/1";
constexpr double kOpLabelFontPx = 12.0;  // svg .op-label in kCss
constexpr const char* kCamCaption =
    "Grad-CAM: where the model looked (red = most evidence for fracture)";

// ---------------------------------------------------------------------------------------------------------
// Reading the metrics JSON (schema documented in metrics/binary_metrics.cpp).

double jnum(const json& j, const char* key) {
  if (!j.is_object()) return kNaN;
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

int64_t jint(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

std::string jstr(const json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& jget(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

// One entry of "metrics": {value, lo, hi, method[, num, den]}.
struct Metric {
  bool present = false;
  double value = kNaN, lo = kNaN, hi = kNaN;
  std::string method;
  int64_t num = -1, den = -1;  // Wilson proportions only
  bool undefined() const { return !present || den == 0; }
};

Metric read_metric(const json& report, const char* name) {
  Metric m;
  const json& e = jget(jget(report, "metrics"), name);
  if (!e.is_object()) return m;
  m.present = true;
  m.value = jnum(e, "value");
  m.lo = jnum(e, "lo");
  m.hi = jnum(e, "hi");
  m.method = jstr(e, "method");
  if (e.contains("den")) {
    m.num = jint(e, "num");
    m.den = jint(e, "den");
  }
  return m;
}

void check_schema(const json& j, const char* what) {
  if (!j.is_object() || jstr(j, "schema") != kSchema) {
    const std::string got =
        j.is_object() ? "schema '" + jstr(j, "schema") + "'" : std::string(j.type_name());
    throw std::invalid_argument(std::string("render_report_html: ") + what + " is not a " +
                                kSchema + " report (got " + got + ")");
  }
}

// The figures at the frozen threshold, from the confusion counts.
struct Counts {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  int64_t positives() const { return tp + fn; }
  int64_t negatives() const { return tn + fp; }
  int64_t flagged() const { return tp + fp; }
  int64_t cleared() const { return tn + fn; }
  int64_t n() const { return tp + fp + tn + fn; }
};

Counts read_counts(const json& report) {
  const json& c = jget(report, "confusion");
  return {jint(c, "tp"), jint(c, "fp"), jint(c, "tn"), jint(c, "fn")};
}

// ---------------------------------------------------------------------------------------------------------
// Number formatting: percentages with one decimal, AUROC-like figures with three, thresholds with
// four significant digits. Every figure with its interval.

std::string g4(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

std::string g6(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string pct(double fraction) { return fixed(fraction * 100.0, 1) + "%"; }

std::string pct_ci(double lo, double hi) {
  return fixed(lo * 100.0, 1) + "&ndash;" + fixed(hi * 100.0, 1) + "%";
}

std::string dec_ci(double lo, double hi) { return fixed(lo, 3) + "&ndash;" + fixed(hi, 3); }

std::string plural(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "patients" -> "patient", "duplicate clusters" -> "duplicate cluster", "groups (site)" -> "group
// (site)".
std::string singular(const std::string& noun) {
  const size_t end = std::min(noun.find(" ("), noun.size());
  if (end > 0 && noun[end - 1] == 's') return noun.substr(0, end - 1) + noun.substr(end);
  return noun;
}

std::string group_noun(const ReportInputs& in) {
  return in.group_name.empty() ? std::string("groups") : in.group_name;
}

std::string groups_phrase(const ReportInputs& in, int64_t n) {
  const std::string many = group_noun(in);
  return html_escape(plural(n, singular(many), many));
}

// What the bootstrap resampled, in words: the report's group noun, or "images".
std::string bootstrap_unit(const ReportInputs& in) {
  const std::string unit = jstr(jget(in.test_metrics, "bootstrap"), "unit");
  if (unit == "group") return html_escape(group_noun(in));
  if (unit == "image" || unit.empty()) return "images";
  return html_escape(unit);
}

bool is_external(const ReportInputs& in) { return in.evaluation_kind == "external evaluation"; }

double ratio(int64_t num, int64_t den) {
  return den == 0 ? kNaN : static_cast<double>(num) / static_cast<double>(den);
}

// Accepts only the base64 alphabet, so a thumbnail string can never break out of its attribute.
bool is_base64(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
  });
}

std::string figure_note(const std::string& id, const std::string& heading,
                        const std::string& note_html) {
  return "<figure id=\"" + id + "\" class=\"fig\" data-note=\"1\"><div class=\"note\"><strong>" +
         html_escape(heading) + "</strong><br>" + note_html + "</div></figure>\n";
}

std::string figure(const std::string& id, const std::string& svgs, const std::string& caption_html,
                   const std::string& extra_class = "") {
  return "<figure id=\"" + id + "\" class=\"fig" + (extra_class.empty() ? "" : " " + extra_class) +
         "\">" + svgs + "<figcaption>" + caption_html + "</figcaption></figure>\n";
}

// ---------------------------------------------------------------------------------------------------------
// The page furniture.

constexpr const char* kCss = R"CSS(
:root{--ink:#1d2733;--muted:#56616e;--line:#d6dce3;--bg:#f5f7fa;--accent:#0b4f8a;
--c1:#0072B2;--c2:#E69F00;--c3:#009E73;--c4:#D55E00;--c5:#CC79A7}
*{box-sizing:border-box}
body{margin:0;background:#e9edf2;color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans","Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 32px 36px;background:#fff}
header h1{font-size:26px;line-height:1.25;margin:0 0 4px;letter-spacing:-.01em}
.subtitle{color:var(--muted);margin:0 0 12px}
.banner{border-left:4px solid var(--c2);background:#fff7e6;padding:7px 12px;font-size:13.5px;margin:0 0 18px}
h2{font-size:19px;margin:30px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15.5px;margin:18px 0 8px}
.summary{border:1px solid var(--line);border-radius:8px;padding:16px 20px;background:var(--bg)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(165px,1fr));gap:12px;margin-bottom:12px}
.tile{background:#fff;border:1px solid var(--line);border-radius:6px;padding:9px 12px}
.tile .k{font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.tile .v{font-size:26px;font-weight:650;color:var(--accent);line-height:1.2;font-variant-numeric:tabular-nums}
.tile .ci,.tile .d{font-size:12.5px;color:var(--muted)}
.sentences{margin:4px 0 6px;padding-left:20px}
.sentences li{margin:3px 0}
.guide{font-size:13px;color:var(--muted);margin:8px 0 0}
.figs{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:18px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px 12px 12px;background:#fff;break-inside:avoid}
figure.wide{grid-column:1/-1}
.pair{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
figcaption{font-size:13px;color:var(--muted);margin-top:6px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;background:var(--bg);font-size:14px;align-self:start}
.card dl{display:grid;grid-template-columns:auto 1fr;gap:4px 14px;margin:8px 0 0}
.card dt{color:var(--muted)}.card dd{margin:0;font-variant-numeric:tabular-nums}
svg.plot{display:block;width:100%;height:auto;max-width:620px;margin:0 auto;font-family:inherit}
svg .plot-title{font-size:14px;font-weight:600;fill:var(--ink)}
svg .tick{font-size:11px;fill:#4a5562}
svg .axis-label{font-size:12px;fill:#2f3944}
svg .y2{fill:#9a6a00}
svg .grid line{stroke:#e9edf1;stroke-width:1}
svg .axes line{stroke:#6b7683;stroke-width:1}
svg .frame{fill:none;stroke:#9aa4af;stroke-width:1}
svg .mark{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
svg .s1{stroke:var(--c1)}
svg .s2{stroke:var(--c2);stroke-dasharray:7 4}
svg .s3{stroke:var(--c3);stroke-dasharray:2 3}
svg .legend line{stroke-width:2.2}
svg .band{fill:var(--c1);fill-opacity:.2;stroke:none}
svg .ref{stroke:#8a939d;stroke-width:1.2;stroke-dasharray:4 4;fill:none}
svg .phase-line{stroke:#4a5562;stroke-width:1.3;stroke-dasharray:6 3}
svg .phase-probe{fill:#f0f2f5}
svg .pt{fill:var(--c1);stroke:#fff;stroke-width:1.5}
svg .pt2{fill:var(--c2);stroke:#fff;stroke-width:1.5}
svg .op{fill:var(--c4);stroke:#fff;stroke-width:2}
svg .ebar{stroke:var(--c1);stroke-width:1.4;fill:none}
svg .hist{fill:#bcc5ce}
svg .legend-box{fill:#fff;fill-opacity:.93;stroke:#d6dce3}
svg .legend-text{font-size:11.5px;fill:#2f3944}
svg .guide-label{font-size:11px;fill:#4a5562}
svg .op-label{font-size:12px;font-weight:600;fill:#a13c00;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
svg .cell{stroke:#fff;stroke-width:3}
svg .cell-count{font-size:28px;font-weight:650}
svg .cell-sub{font-size:12px}
svg .on-dark{fill:#fff}svg .on-light{fill:#1d2733}
svg .cm-head{font-size:12.5px;font-weight:600;fill:#2f3944}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
table.run td:first-child{font-weight:600;width:26%}
table.run td{word-break:break-word}
.tablenote{font-size:12.5px;color:var(--muted);margin:6px 0 0}
code,.path{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.thumb{border:1px solid var(--line);border-radius:6px;padding:8px;background:#fff;break-inside:avoid;margin:0}
.thumb img,.thumb .noimg{display:block;width:100%;aspect-ratio:1/1;object-fit:contain;background:#000;border-radius:3px}
.thumb .noimg{display:flex;align-items:center;justify-content:center;color:#c8ced5;font-size:12px}
.thumb .path{display:block;word-break:break-all;margin-top:6px}
.thumb .meta{font-size:12.5px;color:var(--muted)}
.thumb.has-cam{grid-column:span 2}
.thumb .views{display:grid;grid-template-columns:1fr 1fr;gap:6px}
.thumb .camnote{font-size:11.5px;color:var(--muted);margin-top:4px}
.context{margin:0 0 12px;font-size:14px}
.refer{margin:8px 0 0;font-size:14px}
.calfit{margin:6px 0 0;color:var(--ink)}
.note{background:var(--bg);border:1px dashed #a9b3bd;border-radius:6px;padding:14px 16px;color:#2f3944}
.disclaimer{margin-top:26px;border:1px solid #e2c27c;background:#fff7e6;border-radius:6px;padding:10px 14px;font-size:13.5px}
#render-check{margin-top:12px;font-size:12px;color:var(--muted)}
@media (max-width:820px){.figs,.pair{grid-template-columns:1fr}main{padding:16px}}
@media print{
body{background:#fff;font-size:10pt}main{max-width:none;padding:0}
.figs{gap:10px}figure,.thumb,.summary,.card,tr{break-inside:avoid}h2,h3{break-after:avoid}
#render-check{display:none}svg.plot{max-width:500px}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
@page{size:A4;margin:14mm}
)CSS";

// Runs after load: every expected figure must hold an <svg> with a real size and drawn data marks
// (or, by design, a visible note). The verdict goes to document.title and #render-check.
constexpr const char* kScriptTemplate = R"JS(
(function () {
  var ids = @IDS@;
  function pointCount(el) {
    var t = el.tagName.toLowerCase();
    if (t === "polyline" || t === "polygon") return el.points ? el.points.numberOfItems : 0;
    if (t === "path") { var m = (el.getAttribute("d") || "").match(/[MLHVCSQTA]/gi); return m ? m.length : 0; }
    return 1;
  }
  function painted(el) {
    var cs = window.getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden" || parseFloat(cs.opacity) === 0) return false;
    var t = el.tagName.toLowerCase();
    var stroke = cs.stroke !== "none" && parseFloat(cs.strokeWidth) > 0 && parseFloat(cs.strokeOpacity) > 0;
    var fill = cs.fill !== "none" && parseFloat(cs.fillOpacity) > 0;
    return (t === "polyline" || t === "path") ? stroke : fill;  // cells and dots are filled shapes
  }
  function drawn(el) {
    try { var b = el.getBBox(); return (b.width > 0 || b.height > 0) && painted(el); } catch (e) { return false; }
  }
  function svgOk(svg) {
    var r = svg.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) return false;
    var marks = svg.querySelectorAll(".mark"), curves = 0, cells = 0, points = 0;
    for (var i = 0; i < marks.length; i++) {
      var m = marks[i], t = m.tagName.toLowerCase();
      if (!drawn(m)) continue;
      if ((t === "polyline" || t === "path") && pointCount(m) >= 2) curves++;
      else if (t === "rect") cells++;
      else if (t === "circle") points++;
    }
    var kind = svg.getAttribute("data-marks");
    if (kind === "curve") return curves > 0;
    if (kind === "cells") return cells >= 4;
    if (kind === "points") return points > 0;
    return curves + cells + points > 0;
  }
  function figureOk(id) {
    var fig = document.getElementById(id);
    if (!fig) return false;
    if (fig.getAttribute("data-note")) {
      var note = fig.querySelector(".note");
      return !!note && note.getBoundingClientRect().height > 0;
    }
    var svgs = fig.querySelectorAll("svg");
    if (!svgs.length) return false;
    for (var i = 0; i < svgs.length; i++) if (!svgOk(svgs[i])) return false;
    return true;
  }
  function run() {
    var missing = [];
    for (var i = 0; i < ids.length; i++) if (!figureOk(ids[i])) missing.push(ids[i]);
    var verdict = missing.length ? "plots-missing:" + missing.join(",")
                                 : "plots-ok:" + ids.length + "/" + ids.length;
    document.title = verdict;
    var div = document.getElementById("render-check");
    if (div) {
      div.textContent = missing.length ? "Render check: not drawn: " + missing.join(", ")
                                       : "Render check: all " + ids.length + " figures drawn.";
      div.setAttribute("data-verdict", verdict);
    }
  }
  if (document.readyState === "complete") run(); else window.addEventListener("load", run);
})();
)JS";

std::string script() {
  std::string ids = json(report_figure_ids()).dump();
  std::string s = kScriptTemplate;
  s.replace(s.find("@IDS@"), 5, ids);
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Summary: the figures at the frozen threshold in plain language.

std::string tile(const std::string& name, const std::string& value, const std::string& ci,
                 const std::string& detail) {
  return "<div class=\"tile\"><div class=\"k\">" + name + "</div><div class=\"v\">" + value +
         "</div><div class=\"ci\">" + ci + "</div><div class=\"d\">" + detail + "</div></div>\n";
}

std::string proportion_tile(const std::string& name, const Metric& m, int64_t num, int64_t den,
                            const std::string& of_what) {
  if (den == 0) return tile(name, "n/a", "undefined", "no " + of_what);
  return tile(name, pct(m.value), "95% CI " + pct_ci(m.lo, m.hi),
              std::to_string(num) + " of " + std::to_string(den) + " " + of_what);
}

std::string threshold_phrase(const ReportInputs& in, const json& test) {
  const double threshold = jnum(test, "threshold");
  std::string s = "an image is flagged as <em>fracture</em> when its score is at least <b>" +
                  g4(threshold) + "</b>";
  if (is_external(in)) {
    s += ", the threshold frozen in the model bundle";
    if (!in.threshold_rule.empty())
      s += " (rule <code>" + html_escape(in.threshold_rule) +
           "</code> on the model's own validation set)";
    s += ", not re-tuned on this data";
  } else if (!in.threshold_rule.empty()) {
    s += ", a threshold chosen on the validation set by the rule <code>" +
         html_escape(in.threshold_rule) + "</code> and frozen before the test set was scored";
  } else if (!jstr(test, "threshold_source").empty()) {
    s += " (" + html_escape(jstr(test, "threshold_source")) + ")";
  }
  return s;
}

// What was evaluated and on what: above the figures, so that no reader takes an external result for
// an internal one or the other way round.
std::string context_paragraph(const ReportInputs& in) {
  std::string s;
  if (is_external(in)) {
    s += "<b>External evaluation.</b> These images were never seen by the model: not in training, "
         "not in validation, not in choosing the threshold. The threshold is the one frozen in the "
         "model bundle, not re-tuned on this data, so the figures below are what the model does on "
         "new data as it stands.";
  } else if (!in.evaluation_kind.empty()) {
    s += "<b>Evaluation on the " + html_escape(in.evaluation_kind) +
         ".</b> Its images were held out from training and from choosing the threshold.";
  }
  if (!in.model_description.empty())
    s += std::string(s.empty() ? "" : " ") + "Model: <code>" + html_escape(in.model_description) +
         "</code>.";
  return s.empty() ? "" : "<p class=\"context\">" + s + "</p>\n";
}

// The "refer to a radiologist" band in plain words; nothing when there is none.
std::string refer_band_paragraph(const ReportInputs& in) {
  const json& b = in.refer_band;
  if (!b.is_object() || b.empty()) return "";
  const int64_t referred = jint(b, "test_referred"), total = jint(b, "test_images");
  const double lo = jnum(b, "lo"), hi = jnum(b, "hi"), accuracy = jnum(b, "accuracy_outside");
  std::string s = "<p class=\"refer\"><b>Referral band.</b> ";
  s += "Scores from " + fixed(lo, 2) + " up to " + fixed(hi, 2) +
       " are too uncertain to call: the model answers &ldquo;refer to a radiologist&rdquo; instead";
  if (!jstr(b, "rule").empty()) s += " (" + html_escape(jstr(b, "rule")) + ")";
  s += ".";
  if (total > 0) {
    s += " " + std::to_string(referred) + " of " + plural(total, "image", "images") + " (" +
         pct(ratio(referred, total)) + ") fell in this band";
    if (std::isfinite(accuracy)) {
      s += "; on the other " + std::to_string(total - referred) + ", the model was right for " +
           pct(accuracy);
    }
    s += ".";
  } else if (std::isfinite(accuracy)) {
    s += " Outside the band the model was right for " + pct(accuracy) + " of images.";
  }
  return s + "</p>\n";
}

std::string summary_section(const ReportInputs& in) {
  const std::string set = in.evaluation_kind == "external evaluation" ? "this data" : "the test set";
  const std::string Set = in.evaluation_kind == "external evaluation" ? "This data" : "The test set";
  const json& test = in.test_metrics;
  const Counts c = read_counts(test);
  const Metric sens = read_metric(test, "recall"), spec = read_metric(test, "specificity");
  const Metric ppv = read_metric(test, "precision"), npv = read_metric(test, "npv");
  const Metric auroc = read_metric(test, "auroc");
  const json& boot = jget(test, "bootstrap");

  std::string s = "<section id=\"summary\" class=\"summary\" aria-label=\"Summary\">\n" +
                  context_paragraph(in) + "<div class=\"tiles\">\n";
  s += proportion_tile("Sensitivity", sens, c.tp, c.positives(), "fractures found");
  s += proportion_tile("Specificity", spec, c.tn, c.negatives(), "normal images cleared");
  s += proportion_tile("PPV", ppv, c.tp, c.flagged(), "flags correct");
  s += proportion_tile("NPV", npv, c.tn, c.cleared(), "clearances correct");
  s += tile("AUROC", fixed(auroc.value, 3), "95% CI " + dec_ci(auroc.lo, auroc.hi),
            "bootstrap over " + bootstrap_unit(in) + ", " + std::to_string(jint(boot, "used")) +
                " resamples");
  s += "</div>\n<ul class=\"sentences\">\n";

  if (c.positives() > 0) {
    s += "<li>Of <b>" + plural(c.positives(), "fracture", "fractures") +
         "</b> in " + set + ", the model found <b>" + std::to_string(c.tp) + "</b> (sensitivity " +
         pct(sens.value) + ", 95% CI " + pct_ci(sens.lo, sens.hi) + ") and missed " +
         std::to_string(c.fn) + ".</li>\n";
  } else {
    s += "<li>" + Set + " holds no fractures, so sensitivity is undefined.</li>\n";
  }
  if (c.negatives() > 0) {
    s += "<li>Of <b>" + plural(c.negatives(), "image", "images") +
         "</b> without a fracture, the model correctly cleared <b>" + std::to_string(c.tn) +
         "</b> (specificity " + pct(spec.value) + ", 95% CI " + pct_ci(spec.lo, spec.hi) +
         ") and raised " + plural(c.fp, "false alarm", "false alarms") + ".</li>\n";
  } else {
    s += "<li>" + Set + " holds no images without a fracture, so specificity is undefined.</li>\n";
  }
  if (c.flagged() > 0) {
    s += "<li>Of <b>" + plural(c.flagged(), "image", "images") +
         "</b> the model flagged as fracture, <b>" + std::to_string(c.tp) +
         "</b> had one (positive predictive value, PPV " + pct(ppv.value) + ", 95% CI " +
         pct_ci(ppv.lo, ppv.hi) + ").</li>\n";
  } else {
    s += "<li>The model flagged no image as fracture, so PPV is undefined.</li>\n";
  }
  if (c.cleared() > 0) {
    s += "<li>Of <b>" + plural(c.cleared(), "image", "images") + "</b> the model cleared, <b>" +
         std::to_string(c.tn) + "</b> had no fracture (negative predictive value, NPV " +
         pct(npv.value) + ", 95% CI " + pct_ci(npv.lo, npv.hi) + ").</li>\n";
  } else {
    s += "<li>The model cleared no image, so NPV is undefined.</li>\n";
  }
  s += "<li>Across all thresholds, AUROC is <b>" + fixed(auroc.value, 3) + "</b> (95% CI " +
       dec_ci(auroc.lo, auroc.hi) +
       "): the chance that a randomly chosen fracture image scores higher than a randomly chosen "
       "normal one "
       "(0.5 = chance, 1 = perfect).</li>\n";
  if (in.val_metrics.is_object()) {
    const Metric va = read_metric(in.val_metrics, "auroc"),
                 vs = read_metric(in.val_metrics, "recall");
    const Metric vp = read_metric(in.val_metrics, "specificity");
    s += "<li>On the validation set (" + plural(jint(in.val_metrics, "n"), "image", "images") +
         ", used to choose the threshold): AUROC " + fixed(va.value, 3) + " (95% CI " +
         dec_ci(va.lo, va.hi) + "), sensitivity " + pct(vs.value) + " (" + pct_ci(vs.lo, vs.hi) +
         "), specificity " + pct(vp.value) + " (" + pct_ci(vp.lo, vp.hi) + ").</li>\n";
  }
  s += "</ul>\n<p class=\"guide\"><b>How to read this:</b> " + threshold_phrase(in, test) +
       ". Sensitivity is the share of fractures the model flags; specificity the share of normal "
       "images it "
       "clears. PPV and NPV depend on how common fractures are (" +
       pct(ratio(c.positives(), c.n())) +
       " of test images here). Each 95% confidence interval (CI) is the range of values compatible "
       "with " + set + "; it narrows as " + set + " grows. Intervals for proportions are Wilson "
       "score intervals; those for AUROC, AUPRC and F1 come from a bootstrap over " +
       bootstrap_unit(in) +
       (jstr(jget(test, "bootstrap"), "unit") == "group"
            ? " (whole " + bootstrap_unit(in) +
                  " are resampled, so that related images stay together)"
            : std::string()) +
       ".</p>\n" + refer_band_paragraph(in) + "</section>\n";
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Figures.

std::string roc_figure(const json& test, const std::string& boot_unit) {
  const json& roc = jget(test, "roc");
  if (!roc.is_array() || roc.size() < 2) {
    return figure_note("fig-roc", "ROC curve",
                       "The metrics hold no ROC curve (both classes are needed).");
  }
  const Metric auroc = read_metric(test, "auroc");
  SvgPlot plot("ROC curve (AUROC " + fixed(auroc.value, 3) + ", 95% CI " + fixed(auroc.lo, 3) +
                   "\u2013" + fixed(auroc.hi, 3) + ")",
               Axis{0.0, 1.0, 0.2, "1 \u2212 specificity (false-positive rate)", false},
               Axis{0.0, 1.0, 0.2, "Sensitivity (true-positive rate)", false});
  const json& band = jget(test, "roc_band");
  if (band.is_array() && !band.empty()) {
    std::vector<XY> lo, hi;
    for (const json& p : band) {
      lo.push_back({jnum(p, "fpr"), jnum(p, "lo")});
      hi.push_back({jnum(p, "fpr"), jnum(p, "hi")});
    }
    plot.band(lo, hi, "band");
  }
  plot.guide({0, 0}, {1, 1}, "ref");
  std::vector<XY> curve;
  for (const json& p : roc) curve.push_back({jnum(p, "fpr"), jnum(p, "tpr")});
  plot.line(curve, "s1");

  const Counts c = read_counts(test);
  std::vector<LegendEntry> legend = {{"ROC on the test set", "line", "s1"}};
  if (band.is_array() && !band.empty()) legend.push_back({"95% bootstrap band", "band", "band"});
  legend.push_back({"chance (AUROC 0.5)", "line", "ref"});
  if (c.positives() > 0 && c.negatives() > 0) {
    const double fpr = ratio(c.fp, c.negatives()), tpr = ratio(c.tp, c.positives());
    const double threshold = jnum(test, "threshold");
    plot.point({fpr, tpr}, 6.5, "op",
               "data-fpr=\"" + g6(fpr) + "\" data-tpr=\"" + g6(tpr) + "\" data-threshold=\"" +
                   g6(threshold) + "\"",
               "Operating point: threshold " + g4(threshold) + ", sensitivity " +
                   fixed(tpr * 100, 1) + "%, specificity " + fixed((1 - fpr) * 100, 1) + "%");
    const std::string label = "threshold " + g4(threshold) + ": sens " + fixed(tpr * 100, 1) +
                              "%, spec " + fixed((1 - fpr) * 100, 1) + "%";
    // Below and beside the dot, on whichever side the whole label fits.
    plot.label_px(plot.px(fpr), plot.py(tpr) + 20, 10, label, "op-label", kOpLabelFontPx);
    legend.push_back({"operating point (frozen threshold)", "point", "op"});
  }
  plot.legend(legend, Corner::kBottomRight);
  return figure(
      "fig-roc", plot.render("curve", "ROC curve of the test set with its 95% bootstrap band"),
      "Each point of the curve is one threshold: higher means more fractures found, further left "
      "means fewer false alarms. The shaded band is the 95% bootstrap interval (resampling " +
          boot_unit +
          ") of sensitivity at each false-positive rate; the dot is the frozen operating "
          "threshold.");
}

std::string pr_figure(const json& test) {
  const json& pr = jget(test, "pr");
  if (!pr.is_array() || pr.size() < 2) {
    return figure_note("fig-pr", "Precision-recall curve",
                       "The metrics hold no precision-recall curve.");
  }
  const Metric auprc = read_metric(test, "auprc");
  SvgPlot plot("Precision\u2013recall (AUPRC " + fixed(auprc.value, 3) + ", 95% CI " +
                   fixed(auprc.lo, 3) + "\u2013" + fixed(auprc.hi, 3) + ")",
               Axis{0.0, 1.0, 0.2, "Recall (sensitivity)", false},
               Axis{0.0, 1.0, 0.2, "Precision (PPV)", false});
  const double n = jnum(test, "n"), npos = jnum(test, "n_positive");
  const double prevalence = n > 0 ? npos / n : kNaN;
  if (std::isfinite(prevalence)) {
    plot.guide({0, prevalence}, {1, prevalence}, "ref",
               "prevalence " + fixed(prevalence * 100, 1) + "% (chance)");
  }
  std::vector<XY> curve;
  for (const json& p : pr) curve.push_back({jnum(p, "recall"), jnum(p, "precision")});
  plot.line(curve, "s1");
  std::vector<LegendEntry> legend = {{"precision\u2013recall on the test set", "line", "s1"},
                                     {"prevalence baseline", "line", "ref"}};
  const Counts c = read_counts(test);
  if (c.flagged() > 0 && c.positives() > 0) {
    const double recall = ratio(c.tp, c.positives()), precision = ratio(c.tp, c.flagged());
    plot.point({recall, precision}, 6.5, "op",
               "data-recall=\"" + g6(recall) + "\" data-precision=\"" + g6(precision) + "\"",
               "Operating point: recall " + fixed(recall * 100, 1) + "%, precision " +
                   fixed(precision * 100, 1) + "%");
    legend.push_back({"operating point (frozen threshold)", "point", "op"});
  }
  plot.legend(legend, Corner::kBottomLeft);
  return figure(
      "fig-pr", plot.render("curve", "Precision-recall curve of the test set"),
      "Of the images flagged at each threshold, the share that truly have a fracture (precision), "
      "against the share of fractures found (recall). The dashed line is what flagging at random "
      "would achieve: the fraction of test images with a fracture.");
}

// Sequential single-hue blue, light to dark: readable for colour-blind readers and in grey print.
std::string heat_colour(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const double a[3] = {239, 244, 250}, b[3] = {8, 69, 148};
  char buf[16];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x",
                static_cast<int>(std::lround(a[0] + (b[0] - a[0]) * t)),
                static_cast<int>(std::lround(a[1] + (b[1] - a[1]) * t)),
                static_cast<int>(std::lround(a[2] + (b[2] - a[2]) * t)));
  return buf;
}

std::string confusion_figure(const json& test) {
  const Counts c = read_counts(test);
  const double x0 = 150, y0 = 86, cw = 170, ch = 120;
  std::string s =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" viewBox=\"0 0 520 380\" "
      "role=\"img\" "
      "aria-label=\"Confusion matrix at the frozen threshold\" data-marks=\"cells\">\n";
  s += "<title>Confusion matrix at threshold " + g4(jnum(test, "threshold")) + "</title>\n";
  s += "<text class=\"plot-title\" x=\"260\" y=\"22\" text-anchor=\"middle\">Confusion matrix at "
       "threshold " +
       g4(jnum(test, "threshold")) + " (rows = truth)</text>\n";
  s += "<text class=\"cm-head\" x=\"" + fixed(x0 + cw, 0) +
       "\" y=\"50\" text-anchor=\"middle\">Model prediction</text>\n";
  const char* cols[2] = {"Flagged: fracture", "Cleared: no fracture"};
  const char* rows[2] = {"Fracture", "No fracture"};
  for (int j = 0; j < 2; ++j) {
    s += "<text class=\"axis-label\" x=\"" + fixed(x0 + cw * (j + 0.5), 1) +
         "\" y=\"74\" text-anchor=\"middle\">" + cols[j] + "</text>\n";
  }
  s += "<text class=\"cm-head\" transform=\"translate(28," + fixed(y0 + ch, 0) +
       ") rotate(-90)\" text-anchor=\"middle\">Truth</text>\n";
  const int64_t cell[2][2] = {{c.tp, c.fn}, {c.fp, c.tn}};
  const char* names[2][2] = {{"true positives (found)", "false negatives (missed)"},
                             {"false positives (false alarms)", "true negatives (cleared)"}};
  const char* short_names[2][2] = {{"found (TP)", "missed (FN)"},
                                   {"false alarms (FP)", "cleared (TN)"}};
  for (int i = 0; i < 2; ++i) {
    const int64_t row_total = cell[i][0] + cell[i][1];
    s += "<text class=\"axis-label\" x=\"" + fixed(x0 - 12, 0) + "\" y=\"" +
         fixed(y0 + ch * (i + 0.5) - 4, 1) + "\" text-anchor=\"end\">" + rows[i] + "</text>";
    s += "<text class=\"tick\" x=\"" + fixed(x0 - 12, 0) + "\" y=\"" +
         fixed(y0 + ch * (i + 0.5) + 12, 1) +
         "\" text-anchor=\"end\">n = " + std::to_string(row_total) + "</text>\n";
    for (int j = 0; j < 2; ++j) {
      const double frac = ratio(cell[i][j], row_total);
      const double cx = x0 + cw * j, cy = y0 + ch * i;
      const std::string ink = std::isfinite(frac) && frac > 0.5 ? "on-dark" : "on-light";
      s += "<rect class=\"mark cell\" x=\"" + fixed(cx, 1) + "\" y=\"" + fixed(cy, 1) +
           "\" width=\"" + fixed(cw, 1) + "\" height=\"" + fixed(ch, 1) +
           "\" style=\"fill:" + heat_colour(frac) + "\"><title>" + names[i][j] + ": " +
           std::to_string(cell[i][j]) + " (" + (std::isfinite(frac) ? pct(frac) : "n/a") +
           " of the row)</title></rect>\n";
      s += "<text class=\"cell-count " + ink + "\" x=\"" + fixed(cx + cw / 2, 1) + "\" y=\"" +
           fixed(cy + 50, 1) + "\" text-anchor=\"middle\">" + std::to_string(cell[i][j]) +
           "</text>";
      s += "<text class=\"cell-sub " + ink + "\" x=\"" + fixed(cx + cw / 2, 1) + "\" y=\"" +
           fixed(cy + 72, 1) + "\" text-anchor=\"middle\">" +
           (std::isfinite(frac) ? pct(frac) : std::string("n/a")) + " of row</text>";
      s += "<text class=\"cell-sub " + ink + "\" x=\"" + fixed(cx + cw / 2, 1) + "\" y=\"" +
           fixed(cy + 92, 1) + "\" text-anchor=\"middle\">" + short_names[i][j] + "</text>\n";
    }
  }
  // Colour key: row percentage, light to dark.
  const double kx = x0, ky = y0 + 2 * ch + 26, kw = 2 * cw;
  s += "<defs><linearGradient id=\"cm-key\"><stop offset=\"0\" stop-color=\"" + heat_colour(0) +
       "\"/><stop offset=\"1\" stop-color=\"" + heat_colour(1) + "\"/></linearGradient></defs>";
  s += "<rect x=\"" + fixed(kx, 1) + "\" y=\"" + fixed(ky, 1) + "\" width=\"" + fixed(kw, 1) +
       "\" height=\"9\" fill=\"url(#cm-key)\" stroke=\"#c9d0d8\"/>";
  s += "<text class=\"tick\" x=\"" + fixed(kx, 1) + "\" y=\"" + fixed(ky + 22, 1) + "\">0%</text>";
  s += "<text class=\"tick\" x=\"" + fixed(kx + kw / 2, 1) + "\" y=\"" + fixed(ky + 22, 1) +
       "\" text-anchor=\"middle\">share of the truth row</text>";
  s += "<text class=\"tick\" x=\"" + fixed(kx + kw, 1) + "\" y=\"" + fixed(ky + 22, 1) +
       "\" text-anchor=\"end\">100%</text>\n";
  s += "</svg>";
  return figure(
      "fig-confusion", s,
      "Counts of test images at the frozen threshold. Rows are the truth, so each row's "
      "percentages "
      "are sensitivity and miss rate (top) and false-alarm rate and specificity (bottom).");
}

// How the scores were calibrated, in one sentence; "" when `fit` is null.
std::string calibration_fit_sentence(const json& fit) {
  if (!fit.is_object() || fit.empty()) return "";
  const std::string method = jstr(fit, "method");
  std::string s = "Scores were calibrated";
  if (method == "temperature") {
    s += " by temperature scaling";
    if (std::isfinite(jnum(fit, "temperature")))
      s += " (T = " + fixed(jnum(fit, "temperature"), 2) + ")";
  } else if (!method.empty()) {
    s += " by " + html_escape(method);
  }
  const std::string on = jstr(fit, "fitted_on");
  const int64_t images = jint(fit, "images");
  if (images > 0 || !on.empty()) {
    s += " fitted on " + (images > 0 ? std::to_string(images) + " " : std::string()) +
         (on.empty() ? "" : html_escape(on) + " ") + (images == 1 ? "image" : "images");
  }
  const double before = jnum(fit, "ece_before"), after = jnum(fit, "ece_after");
  if (std::isfinite(before) && std::isfinite(after)) {
    s += "; expected calibration error " + fixed(before, 3) + " before, " + fixed(after, 3) +
         " after";
  }
  return s + ".";
}

std::string calibration_figure(const json& test, const json& fit) {
  const json& cal = jget(test, "calibration");
  const std::string fit_sentence = calibration_fit_sentence(fit);
  if (!cal.is_object() || !jget(cal, "bins").is_array() || jget(cal, "bins").empty()) {
    return figure_note(
        "fig-calibration", "Calibration",
        "Calibration is not shown: some scores lie outside [0, 1], so they cannot be read as "
        "probabilities (the metrics report <code>calibration: null</code>)." +
            (fit_sentence.empty() ? "" : " " + fit_sentence));
  }
  const json& bins = jget(cal, "bins");
  SvgPlot plot("Reliability diagram (ECE " + fixed(jnum(cal, "ece"), 3) + ")",
               Axis{0.0, 1.0, 0.2, "Mean predicted score in bin", false},
               Axis{0.0, 1.0, 0.2, "Observed fraction with fracture", false});
  int64_t max_count = 0;
  for (const json& b : bins) max_count = std::max(max_count, jint(b, "count"));
  // Images per bin as a low histogram along the bottom: where the scores are, and so which points
  // to trust.
  const double hist_height = plot.plot_height() * 0.2;
  std::string hist;
  for (const json& b : bins) {
    const int64_t count = jint(b, "count");
    if (count == 0 || max_count == 0) continue;
    const double x0 = plot.px(jnum(b, "lo")) + 1, x1 = plot.px(jnum(b, "hi")) - 1;
    const double bar = hist_height * static_cast<double>(count) / static_cast<double>(max_count);
    const double ybase = plot.plot_top() + plot.plot_height();
    hist += "<rect class=\"hist\" x=\"" + fixed(x0, 1) + "\" y=\"" + fixed(ybase - bar, 1) +
            "\" width=\"" + fixed(x1 - x0, 1) + "\" height=\"" + fixed(bar, 1) + "\"><title>" +
            std::to_string(count) + " images with score in [" + fixed(jnum(b, "lo"), 2) + ", " +
            fixed(jnum(b, "hi"), 2) + ")</title></rect>\n";
  }
  plot.raw(hist);
  plot.guide({0, 0}, {1, 1}, "ref");
  std::vector<XY> pts;
  for (const json& b : bins) {
    if (jint(b, "count") == 0) continue;
    const double x = jnum(b, "mean_score"), y = jnum(b, "fraction_positive");
    plot.error_bar(x, jnum(b, "fraction_lo"), jnum(b, "fraction_hi"), "ebar");
    pts.push_back({x, y});
  }
  plot.line(pts, "s1");
  for (const json& b : bins) {
    const int64_t count = jint(b, "count");
    if (count == 0) continue;
    plot.point({jnum(b, "mean_score"), jnum(b, "fraction_positive")}, 4.5, "pt",
               "data-count=\"" + std::to_string(count) + "\"",
               "scores " + fixed(jnum(b, "lo"), 2) + "\u2013" + fixed(jnum(b, "hi"), 2) + ": " +
                   std::to_string(count) + " images, mean score " +
                   fixed(jnum(b, "mean_score"), 3) + ", observed " +
                   fixed(jnum(b, "fraction_positive") * 100, 1) + "% (95% CI " +
                   fixed(jnum(b, "fraction_lo") * 100, 1) + "\u2013" +
                   fixed(jnum(b, "fraction_hi") * 100, 1) + "%)");
  }
  plot.text_px(plot.plot_left() + plot.plot_width() - 6,
               plot.plot_top() + plot.plot_height() - hist_height - 6,
               "bars: images per bin (tallest " + std::to_string(max_count) + ")", "guide-label",
               "end");
  // Below the plot: inside, the legend would hide bins of a poorly calibrated model.
  plot.legend({{"observed fraction (95% CI)", "point", "pt"},
               {"perfect calibration", "line", "ref"},
               {"images per bin", "bar", "hist"}},
              Corner::kBelow);
  return figure(
      "fig-calibration", plot.render(pts.size() >= 2 ? "curve" : "points", "Reliability diagram"),
      "Test images grouped by score. A calibrated model's points lie on the diagonal: of images "
      "scored about 0.8, about 80% have a fracture. ECE is the count-weighted mean distance from "
      "the diagonal." +
          (fit_sentence.empty() ? "" : "<p class=\"calfit\">" + fit_sentence + "</p>"));
}

struct PhaseSwitch {
  bool found = false;
  double x = 0.0;
};

PhaseSwitch find_phase_switch(const std::vector<EpochRow>& rows) {
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i - 1].phase == "probe" && rows[i].phase == "finetune") {
      return {true, 0.5 * (rows[i - 1].epoch + rows[i].epoch)};
    }
  }
  return {};
}

std::string history_figure(const std::vector<EpochRow>& rows) {
  if (rows.empty()) {
    return figure_note("fig-history", "Classifier training",
                       "No classifier training history was recorded.");
  }
  double e_min = rows.front().epoch, e_max = rows.front().epoch;
  double v_min = 1.0, l_min = std::numeric_limits<double>::infinity(), l_max = -l_min;
  for (const EpochRow& r : rows) {
    e_min = std::min<double>(e_min, r.epoch);
    e_max = std::max<double>(e_max, r.epoch);
    for (double v : {r.val_accuracy, r.val_auroc}) {
      if (std::isfinite(v)) v_min = std::min(v_min, v);
    }
    for (double v : {r.train_loss, r.val_loss}) {
      if (std::isfinite(v)) {
        l_min = std::min(l_min, v);
        l_max = std::max(l_max, v);
      }
    }
  }
  const Axis x_axis = nice_axis(e_min, e_max, 8, "Epoch", 1.0);
  Axis v_axis = nice_axis(std::max(0.0, v_min - 0.02), 1.0, 5, "Validation value");
  v_axis.hi = std::min(v_axis.hi, 1.0);
  const Axis l_axis =
      nice_axis(std::isfinite(l_min) ? std::max(0.0, l_min * 0.9) : 0.0,
                std::isfinite(l_max) ? l_max * 1.02 : 1.0, 5, "Loss (cross-entropy)");
  const PhaseSwitch sw = find_phase_switch(rows);
  const std::string kind = rows.size() >= 2 ? "curve" : "points";

  auto add_phases = [&](SvgPlot& plot) {
    if (!sw.found) return;
    const double x_left = plot.plot_left(), x_switch = plot.px(sw.x);
    plot.raw("<rect class=\"phase-probe\" x=\"" + fixed(x_left, 1) + "\" y=\"" +
             fixed(plot.plot_top(), 1) + "\" width=\"" + fixed(x_switch - x_left, 1) +
             "\" height=\"" + fixed(plot.plot_height(), 1) + "\"/>\n");
    plot.vline(sw.x, "phase-line", "fine-tuning \u2192");
    plot.text_px(x_switch - 4, plot.plot_top() + 12, "\u2190 linear probe", "guide-label", "end");
  };

  SvgPlot perf("Validation accuracy and AUROC per epoch", x_axis, v_axis);
  add_phases(perf);
  std::vector<XY> acc, auc;
  for (const EpochRow& r : rows) {
    acc.push_back({static_cast<double>(r.epoch), r.val_accuracy});
    auc.push_back({static_cast<double>(r.epoch), r.val_auroc});
  }
  perf.line(auc, "s1");
  perf.line(acc, "s2");
  if (rows.size() < 2) {
    perf.point(auc.front(), 4.5, "pt");
    perf.point(acc.front(), 4.5, "pt2");
  }
  perf.legend({{"validation AUROC", "line", "s1"}, {"validation accuracy", "line", "s2"}},
              Corner::kBottomRight);

  SvgPlot loss("Loss per epoch", x_axis, l_axis);
  add_phases(loss);
  std::vector<XY> tl, vl;
  for (const EpochRow& r : rows) {
    tl.push_back({static_cast<double>(r.epoch), r.train_loss});
    vl.push_back({static_cast<double>(r.epoch), r.val_loss});
  }
  loss.line(tl, "s1");
  loss.line(vl, "s2");
  if (rows.size() < 2) {
    loss.point(tl.front(), 4.5, "pt");
    loss.point(vl.front(), 4.5, "pt2");
  }
  loss.legend({{"training loss", "line", "s1"}, {"validation loss", "line", "s2"}},
              Corner::kTopRight);

  std::string caption = "Classifier training, one point per epoch.";
  if (sw.found) {
    caption +=
        " Shaded: linear probe (backbone frozen, only the classification head learns); after the "
        "dashed "
        "line the whole network is fine-tuned.";
  }
  return figure("fig-history",
                "<div class=\"pair\">" +
                    perf.render(kind, "Validation accuracy and AUROC per epoch") +
                    loss.render(kind, "Training and validation loss per epoch") + "</div>",
                caption, "wide");
}

std::string pretrain_figure(const std::vector<PretrainRow>& rows) {
  if (rows.empty()) {
    return figure_note(
        "fig-pretrain", "Self-supervised pretraining",
        "Backbone: random initialisation (no pretraining). This run is the baseline without "
        "SimCLR; compare it with a pretrained run to see what self-supervision adds.");
  }
  double e_min = rows.front().epoch, e_max = rows.front().epoch;
  double l_min = std::numeric_limits<double>::infinity(), l_max = -l_min;
  std::vector<XY> loss_pts, knn_pts;
  for (const PretrainRow& r : rows) {
    e_min = std::min<double>(e_min, r.epoch);
    e_max = std::max<double>(e_max, r.epoch);
    if (std::isfinite(r.loss)) {
      l_min = std::min(l_min, r.loss);
      l_max = std::max(l_max, r.loss);
    }
    loss_pts.push_back({static_cast<double>(r.epoch), r.loss});
    if (std::isfinite(r.knn_accuracy))
      knn_pts.push_back({static_cast<double>(r.epoch), r.knn_accuracy});
  }
  const bool has_knn = !knn_pts.empty();
  SvgPlot plot(has_knn ? "SimCLR pretraining: loss and kNN accuracy" : "SimCLR pretraining loss",
               nice_axis(e_min, e_max, 8, "Pretraining epoch", 1.0),
               nice_axis(std::isfinite(l_min) ? l_min : 0.0, std::isfinite(l_max) ? l_max : 1.0, 5,
                         "NT-Xent loss"));
  if (has_knn) {
    double k_min = 1.0, k_max = 0.0;
    for (const XY& p : knn_pts) {
      k_min = std::min(k_min, p.y);
      k_max = std::max(k_max, p.y);
    }
    Axis k_axis =
        nice_axis(std::max(0.0, k_min - 0.05), std::min(1.0, k_max + 0.05), 5, "kNN accuracy");
    k_axis.lo = std::max(0.0, k_axis.lo);
    k_axis.hi = std::min(1.0, k_axis.hi);
    k_axis.percent = true;
    plot.set_y2(k_axis);
  }
  plot.line(loss_pts, "s1");
  if (loss_pts.size() < 2) plot.point(loss_pts.front(), 4.5, "pt");
  std::vector<LegendEntry> legend = {{"NT-Xent loss (left axis)", "line", "s1"}};
  if (has_knn) {
    plot.line(knn_pts, "s2", "", true);
    for (const XY& p : knn_pts) {
      plot.point(p, 3.5, "pt2", "",
                 "epoch " + fixed(p.x, 0) + ": kNN accuracy " + fixed(p.y * 100, 1) + "%", true);
    }
    legend.push_back({"kNN accuracy (right axis)", "line", "s2"});
  }
  plot.legend(legend, Corner::kTopRight);
  const bool curve = loss_pts.size() >= 2 || knn_pts.size() >= 2;
  return figure(
      "fig-pretrain", plot.render(curve ? "curve" : "points", "SimCLR pretraining curve"),
      std::string(
          "Self-supervised SimCLR pretraining on unlabelled radiographs: the contrastive loss "
          "should fall steadily.") +
          (has_knn ? " kNN accuracy is a label-using probe of the frozen features, measured "
                     "periodically."
                   : ""));
}

std::string training_card(const std::vector<EpochRow>& history,
                          const std::vector<PretrainRow>& pretrain) {
  std::string s = "<div class=\"card\"><strong>Training at a glance</strong><dl>\n";
  auto row = [&](const std::string& k, const std::string& v) {
    s += "<dt>" + k + "</dt><dd>" + v + "</dd>\n";
  };
  if (pretrain.empty()) {
    row("Backbone", "random initialisation (no pretraining)");
  } else {
    row("SimCLR epochs", std::to_string(pretrain.size()));
    row("Loss first &rarr; last",
        fixed(pretrain.front().loss, 3) + " &rarr; " + fixed(pretrain.back().loss, 3));
    for (auto it = pretrain.rbegin(); it != pretrain.rend(); ++it) {
      if (std::isfinite(it->knn_accuracy)) {
        row("Last kNN accuracy",
            pct(it->knn_accuracy) + " (epoch " + std::to_string(it->epoch) + ")");
        break;
      }
    }
  }
  if (!history.empty()) {
    const auto probe = std::count_if(history.begin(), history.end(),
                                     [](const EpochRow& r) { return r.phase == "probe"; });
    const auto tune = std::count_if(history.begin(), history.end(),
                                    [](const EpochRow& r) { return r.phase == "finetune"; });
    row("Classifier epochs", std::to_string(history.size()) + " (" + std::to_string(probe) +
                                 " probe, " + std::to_string(tune) + " fine-tune)");
    // NaN (not measured) ranks below every measured epoch.
    auto key = [](const EpochRow& r) { return std::isfinite(r.val_auroc) ? r.val_auroc : -1.0; };
    const auto best =
        std::max_element(history.begin(), history.end(),
                         [&](const EpochRow& a, const EpochRow& b) { return key(a) < key(b); });
    row("Best validation AUROC", fixed(best->val_auroc, 3) + " (epoch " +
                                     std::to_string(best->epoch) + ", " + html_escape(best->phase) +
                                     ")");
    row("Final validation accuracy", pct(history.back().val_accuracy));
    row("Final losses (train / val)",
        fixed(history.back().train_loss, 3) + " / " + fixed(history.back().val_loss, 3));
  }
  s += "</dl></div>\n";
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Galleries, tables.

std::string gallery(const std::vector<GalleryItem>& items, const std::string& empty_note) {
  if (items.empty()) return "<p class=\"note\">" + empty_note + "</p>\n";
  std::string s = "<div class=\"gallery\">\n";
  for (const GalleryItem& it : items) {
    const bool cam = is_base64(it.heatmap_png_base64);
    s += cam ? "<figure class=\"thumb has-cam\"><div class=\"views\">" : "<figure class=\"thumb\">";
    if (is_base64(it.thumbnail_png_base64)) {
      s += "<img src=\"data:image/png;base64," + it.thumbnail_png_base64 + "\" alt=\"" +
           html_escape(it.path) + "\">";
    } else {
      s += "<div class=\"noimg\">no thumbnail</div>";
    }
    if (cam) {
      s += "<img class=\"cam\" src=\"data:image/png;base64," + it.heatmap_png_base64 +
           "\" alt=\"Grad-CAM of " + html_escape(it.path) + "\"></div><div class=\"camnote\">" +
           kCamCaption + "</div>";
    }
    s += "<span class=\"path\">" + html_escape(it.path) + "</span><div class=\"meta\">score <b>" +
         fixed(it.score, 3) +
         "</b> &middot; truth: " + (it.label == 1 ? "fracture" : "no fracture") +
         "</div></figure>\n";
  }
  s += "</div>\n";
  return s;
}

// "0.412 (0.350 to 0.470)" from {"value", "lo", "hi"} (nulls: "n/a" / the value alone).
std::string estimate_cell(const json& e) {
  if (!e.is_object() || !e["value"].is_number()) return "n/a";
  std::string s = fixed(e["value"].get<double>(), 3);
  if (e["lo"].is_number() && e["hi"].is_number())
    s += " (" + fixed(e["lo"].get<double>(), 3) + " to " + fixed(e["hi"].get<double>(), 3) + ")";
  return s;
}

// Where the fracture is: the localisation figures against the annotated boxes and examples.
std::string localisation_section(const ReportInputs& in) {
  const json& l = in.localisation;
  std::string h = "<h2>Where the fracture is</h2>\n";
  h += "<p class=\"tablenote\">" + std::to_string(l.value("fractured_images", 0)) +
       " fractured images with " + std::to_string(l.value("true_boxes", 0)) +
       " annotated boxes, among " + std::to_string(l.value("images", 0)) +
       " images scored. Hit: the centre of the model's strongest box inside an annotated box. " +
       html_escape(l.value("definitions", std::string())) + ".</p>\n";
  h += "<table class=\"metrics\"><tr><th>Figure</th><th>Value (95% interval)</th></tr>\n";
  h += "<tr><td>Hit rate of the boxes</td><td>" + estimate_cell(l["hit_rate"]) + "</td></tr>\n";
  if (l.value("point_images", 0) > 0) {
    h += "<tr><td>Hit rate of Grad-CAM's peak</td><td>" + estimate_cell(l["point_hit_rate"]) +
         "</td></tr>\n<tr><td>Boxes minus Grad-CAM (paired)</td><td>" +
         estimate_cell(l["hit_difference"]) + "</td></tr>\n";
  }
  h += "<tr><td>Average precision at IoU " + fixed(l.value("iou", 0.5), 2) + "</td><td>" +
       estimate_cell(l["average_precision"]) + "</td></tr>\n";
  for (const json& f : l.value("froc", json::array())) {
    h += "<tr><td>Sensitivity at " + g4(f.value("fp_per_image", 0.0)) +
         " false boxes per image (FROC)</td><td>" + estimate_cell(f) + "</td></tr>\n";
  }
  h += "</table>\n";
  if (!in.localised.empty()) {
    h += "<p class=\"tablenote\">Examples: green, the annotated boxes; white, the boxes the model "
         "shows (dashed: uncertain).</p>\n";
    h += gallery(in.localised, "");
  }
  return h;
}

std::string metric_cell(const Metric& m, bool proportion) {
  if (!m.present) return "&ndash;";
  if (m.undefined()) return "undefined";
  return proportion ? pct(m.value) + " (" + pct_ci(m.lo, m.hi) + ")"
                    : fixed(m.value, 3) + " (" + dec_ci(m.lo, m.hi) + ")";
}

std::string metrics_table(const ReportInputs& in) {
  const json& test = in.test_metrics;
  const json& val = in.val_metrics;
  struct Row {
    const char* key;
    const char* name;
    bool proportion;
  };
  const Row rows[] = {{"auroc", "AUROC", false},
                      {"auprc", "AUPRC (average precision)", false},
                      {"recall", "Sensitivity (recall)", true},
                      {"specificity", "Specificity", true},
                      {"precision", "PPV (precision)", true},
                      {"npv", "NPV", true},
                      {"accuracy", "Accuracy", true},
                      {"f1", "F1 score", false}};
  const bool has_val = val.is_object();
  const json& boot = jget(test, "bootstrap");
  std::string s =
      "<table class=\"metrics\"><thead><tr><th>Metric</th><th class=\"num\">Test</th><th "
      "class=\"num\">"
      "95% CI</th><th class=\"num\">Count</th><th>Interval</th>";
  if (has_val) s += "<th class=\"num\">Validation (95% CI)</th>";
  s += "</tr></thead><tbody>\n";
  for (const Row& r : rows) {
    const Metric m = read_metric(test, r.key);
    if (!m.present) continue;
    std::string value, ci, count;
    if (m.undefined()) {
      value = "undefined";
      ci = "&ndash;";
    } else if (r.proportion) {
      value = pct(m.value);
      ci = pct_ci(m.lo, m.hi);
    } else {
      value = fixed(m.value, 3);
      ci = dec_ci(m.lo, m.hi);
    }
    count = m.den >= 0 ? std::to_string(m.num) + " / " + std::to_string(m.den) : "&ndash;";
    std::string method = m.method == "wilson"      ? "Wilson score"
                         : m.method == "bootstrap" ? "bootstrap percentile"
                                                   : html_escape(m.method);
    s += "<tr><td>" + std::string(r.name) + "</td><td class=\"num\">" + value +
         "</td><td class=\"num\">" + ci + "</td><td class=\"num\">" + count + "</td><td>" + method +
         "</td>";
    if (has_val)
      s += "<td class=\"num\">" + metric_cell(read_metric(val, r.key), r.proportion) + "</td>";
    s += "</tr>\n";
  }
  s += "</tbody></table>\n";
  const json& cal = jget(test, "calibration");
  s += "<p class=\"tablenote\">Test set: " + plural(jint(test, "n"), "image", "images") + " (" +
       std::to_string(jint(test, "n_positive")) + " with fracture, " +
       std::to_string(jint(test, "n_negative")) + " without)";
  if (jget(test, "n_groups").is_number()) s += " from " + groups_phrase(in, jint(test, "n_groups"));
  s += ". Threshold " + g4(jnum(test, "threshold")) + " (" +
       html_escape(jstr(test, "threshold_source")) +
       "). Bootstrap: " + html_escape(jstr(boot, "method")) + ", " +
       std::to_string(jint(boot, "used")) + " of " + std::to_string(jint(boot, "resamples")) +
       " resamples used, resampling " + bootstrap_unit(in) + ", seed " +
       std::to_string(jint(boot, "seed")) + ".";
  if (cal.is_object()) s += " Expected calibration error " + fixed(jnum(cal, "ece"), 3) + ".";
  s += "</p>\n";
  return s;
}

std::string run_value(const json& v) {
  if (v.is_string()) return html_escape(v.get<std::string>());
  if (v.is_number_float()) return html_escape(g6(v.get<double>()));
  return html_escape(v.dump());
}

std::string run_table(const json& run_info) {
  if (!run_info.is_object() || run_info.empty()) {
    if (run_info.is_null() || run_info.empty())
      return "<p class=\"note\">No run information was recorded.</p>\n";
    return "<p><code>" + html_escape(run_info.dump()) + "</code></p>\n";
  }
  // The usual keys first, in reading order; then the rest (alphabetical); the command line last.
  const std::vector<std::string> first = {"dataset",    "splits", "model",
                                          "checkpoint", "seed",   "date"};
  std::vector<std::string> keys;
  for (const std::string& k : first) {
    if (run_info.contains(k)) keys.push_back(k);
  }
  for (auto it = run_info.begin(); it != run_info.end(); ++it) {
    if (std::find(first.begin(), first.end(), it.key()) == first.end() && it.key() != "command")
      keys.push_back(it.key());
  }
  if (run_info.contains("command")) keys.push_back("command");
  std::string s = "<table class=\"run\"><tbody>\n";
  for (const std::string& k : keys) {
    const json& v = run_info.at(k);
    const bool code = k == "command" || v.is_object() || v.is_array();
    s += "<tr><td>" + html_escape(k) + "</td><td>" + (code ? "<code>" : "") + run_value(v) +
         (code ? "</code>" : "") + "</td></tr>\n";
  }
  s += "</tbody></table>\n";
  return s;
}

}  // namespace

const std::vector<std::string>& report_figure_ids() {
  static const std::vector<std::string> kIds = {"fig-roc",         "fig-pr",      "fig-confusion",
                                                "fig-calibration", "fig-history", "fig-pretrain"};
  return kIds;
}

std::string render_report_html(const ReportInputs& in) {
  check_schema(in.test_metrics, "test_metrics");
  if (!in.val_metrics.is_null()) check_schema(in.val_metrics, "val_metrics");
  const json& test = in.test_metrics;
  const std::string title = in.title.empty() ? "wristssl: fracture detection report" : in.title;

  std::string h;
  h.reserve(1 << 17);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"wristssl report\">\n<title>" +
       html_escape(title) + "</title>\n<style>" + kCss +
       "</style>\n</head>\n<body>\n<main>\n<header>\n<h1>" + html_escape(title) + "</h1>\n";
  std::string set_name = in.evaluation_kind.empty() ? "test set" : in.evaluation_kind;
  set_name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(set_name[0])));
  h += "<p class=\"subtitle\">" + html_escape(set_name) + ": " +
       plural(jint(test, "n"), "image", "images") + ", " +
       std::to_string(jint(test, "n_positive")) + " with a fracture (" +
       pct(ratio(jint(test, "n_positive"), jint(test, "n"))) + ")";
  if (jget(test, "n_groups").is_number()) h += ", " + groups_phrase(in, jint(test, "n_groups"));
  h += " &middot; operating threshold " + g4(jnum(test, "threshold"));
  if (is_external(in)) {
    h += " (frozen in the model bundle)";
  } else if (!in.threshold_rule.empty()) {
    h += " (" + html_escape(in.threshold_rule) + " on validation, frozen)";
  }
  h += "</p>\n";
  if (!in.disclaimer.empty()) h += "<p class=\"banner\">" + html_escape(in.disclaimer) + "</p>\n";
  h += "</header>\n";

  h += "<h2>Summary</h2>\n" + summary_section(in);

  h += "<h2>How well does the score separate fractures from normal images?</h2>\n<div "
       "class=\"figs\">\n" +
       roc_figure(test, bootstrap_unit(in)) + pr_figure(test) + "</div>\n";
  h += "<h2>At the operating threshold</h2>\n<div class=\"figs\">\n" + confusion_figure(test) +
       calibration_figure(test, in.calibration) + "</div>\n";
  if (in.evaluation_kind == "external evaluation") {
    // The model was trained elsewhere: its curves are in its own run's report, not here.
    h += "<h2>The model</h2>\n<div class=\"figs\">\n" +
         figure_note("fig-history", "Model evaluated",
                     "<code>" + html_escape(in.model_description) +
                         "</code>. Its training (data, epochs, validation curves, threshold choice) is in the "
                         "report of the run that made it; this evaluation changed nothing in it.") +
         figure_note("fig-pretrain", "What it was trained on",
                     "See the Run table below (model trained on, training images, creation date, version). The "
                     "images scored here must not be among them: that is what makes this an external evaluation.") +
         "</div>\n";
  } else {
    h += "<h2>Training</h2>\n<div class=\"figs\">\n" + history_figure(in.history) +
         pretrain_figure(in.pretrain) + training_card(in.history, in.pretrain) + "</div>\n";
  }

  const Counts c = read_counts(test);
  h += "<h2>Most confident errors</h2>\n";
  h += "<h3>Missed fractures (false negatives): lowest scores among fractures</h3>\n";
  if (!in.false_negatives.empty()) {
    h += "<p class=\"tablenote\">" + std::to_string(in.false_negatives.size()) + " shown of " +
         std::to_string(c.fn) + " missed at threshold " + g4(jnum(test, "threshold")) + ".</p>\n";
  }
  h += gallery(in.false_negatives, "No missed fractures to show.");
  h += "<h3>False alarms (false positives): highest scores among normal images</h3>\n";
  if (!in.false_positives.empty()) {
    h += "<p class=\"tablenote\">" + std::to_string(in.false_positives.size()) + " shown of " +
         std::to_string(c.fp) + " false alarms at threshold " + g4(jnum(test, "threshold")) +
         ".</p>\n";
  }
  h += gallery(in.false_positives, "No false alarms to show.");

  if (in.localisation.is_object()) h += localisation_section(in);

  h += "<h2>All metrics</h2>\n" + metrics_table(in);
  h += "<h2>Run</h2>\n" + run_table(in.run_info);
  if (!in.disclaimer.empty()) {
    h += "<div class=\"disclaimer\"><strong>Disclaimer.</strong> " + html_escape(in.disclaimer) +
         "</div>\n";
  }
  h += "<div id=\"render-check\" data-verdict=\"not-run\">Render check: not run (needs "
       "JavaScript).</div>\n";
  h += "</main>\n<script>" + script() + "</script>\n</body>\n</html>\n";
  return h;
}

void write_report(const std::string& path, const ReportInputs& in) {
  util::atomic_write(path, render_report_html(in));
}

}  // namespace wristssl::report
