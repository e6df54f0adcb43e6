#include "wristssl/report/study_page.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "wristssl/report/html_report.h"
#include "wristssl/report/svg_plot.h"

using nlohmann::json;

namespace wristssl::report {

namespace {

std::string num(const json& v, int decimals) {
  if (!v.is_number()) return "n/a";
  return fixed(v.get<double>(), decimals);
}

std::string interval_text(const json& j, int decimals, bool sign = false) {
  if (!j.is_object() || !j.contains("mean")) return "n/a";
  std::string m = num(j["mean"], decimals);
  if (sign && j["mean"].get<double>() >= 0) m = "+" + m;
  if (j.value("n", 1) < 2) return m;
  return m + " [" + num(j["lo"], decimals) + ", " + num(j["hi"], decimals) + "]";
}

std::string paired_text(const json& j, const char* key, bool p_value) {
  if (!j.contains(key)) return "";
  const json& d = j[key];
  std::string s = (d["difference"].get<double>() >= 0 ? "+" : "") + num(d["difference"], 3) + " [" +
                  num(d["lo"], 3) + ", " + num(d["hi"], 3) + "]";
  if (p_value) {
    const double p = d["p"].get<double>();
    s += p < 0.001 ? ", p<0.001" : ", p=" + fixed(p, 3);
  }
  return s;
}

// One row of the study's table as text cells, and the header: the Markdown and the HTML tables
// both.
std::vector<std::string> table_header(const std::string& baseline) {
  return {"labels",
          "arm",
          "AUROC, mean over folds x seeds [95% CI]",
          "out-of-fold AUROC",
          "difference to " + baseline + ", fold-paired [95% CI]",
          "DeLong, out-of-fold [95% CI], p",
          "grouped paired bootstrap [95% CI]",
          "sensitivity / specificity at the frozen thresholds [95% CI]",
          "wall time"};
}

// "0.674 [0.617, 0.725] / 0.560 [0.525, 0.595]", or "" when the runs recorded no confusion.
std::string frozen_text(const json& row) {
  if (!row.contains("frozen_threshold")) return "";
  auto one = [](const json& e) {
    return num(e["value"], 3) + " [" + num(e["lo"], 3) + ", " + num(e["hi"], 3) + "]";
  };
  const json& f = row["frozen_threshold"];
  return one(f["sensitivity"]) + " / " + one(f["specificity"]);
}

std::vector<std::string> table_cells(const json& row, const std::string& baseline) {
  const json pooled = row["pooled"].empty() ? json::object() : row["pooled"][0];
  return {fixed(row["fraction"].get<double>() * 100, 0) + "%",
          row["arm"].get<std::string>(),
          interval_text(row.value("auroc", json()), 3),
          num(pooled.value("pooled_auroc", json()), 3),
          row["arm"] == baseline
              ? "(baseline)"
              : interval_text(row.value("fold_paired_difference", json()), 3, true),
          paired_text(pooled, "delong", true),
          paired_text(pooled, "bootstrap", false),
          frozen_text(row),
          fixed(row.value("seconds", 0.0), 0) + " s"};
}

// A further paired comparison ("compare") as text cells, and the header.
std::vector<std::string> comparison_header() {
  return {"labels",
          "arm",
          "against",
          "difference, fold-paired [95% CI]",
          "DeLong, out-of-fold [95% CI], p",
          "grouped paired bootstrap [95% CI]"};
}

std::vector<std::string> comparison_cells(const json& c) {
  const json pooled = c["pooled"].empty() ? json::object() : c["pooled"][0];
  return {fixed(c["fraction"].get<double>() * 100, 0) + "%",
          c["arm"].get<std::string>(),
          c["against"].get<std::string>(),
          interval_text(c.value("fold_paired_difference", json()), 3, true),
          paired_text(pooled, "delong", true),
          paired_text(pooled, "bootstrap", false)};
}

std::string markdown_row(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const auto& c : cells) line += " " + c + " |";
  return line + "\n";
}

// One verdict as a sentence, for the page and the Markdown.
std::string verdict_sentence(const json& v, const std::string& baseline) {
  const double d = v["difference"].get<double>();
  const int compared = v.value("arms_compared", 1);
  return "At " + fixed(v["fraction"].get<double>() * 100, 0) + "% of the labels the best arm, " +
         v["best_arm"].get<std::string>() + ", " + (d >= 0 ? "beats " : "trails ") + baseline +
         " by " + fixed(std::fabs(d), 3) + " AUROC (DeLong on the out-of-fold scores, 95% CI " +
         (compared > 1 ? "adjusted for the " + std::to_string(compared) + " arms compared, "
                       : std::string()) +
         fixed(v["lo"].get<double>(), 3) + " to " + fixed(v["hi"].get<double>(), 3) +
         ", p = " + fixed(v["p"].get<double>(), 3) + "): " +
         (v["interval_excludes_zero"].get<bool>()
              ? (d > 0 ? "a difference the data resolves."
                       : "the baseline is better, and the data resolves it.")
              : "the interval includes 0: no difference the data can resolve.");
}

}  // namespace

std::string render_study_markdown(const json& study) {
  const std::string baseline = study["baseline"];
  const std::vector<std::string> header = table_header(baseline);
  std::string md = markdown_row(header) + "|";
  for (size_t i = 0; i < header.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& row : study["rows"]) md += markdown_row(table_cells(row, baseline));
  if (!study["verdicts"].empty()) md += "\n";
  for (const auto& v : study["verdicts"]) md += "- " + verdict_sentence(v, baseline) + "\n";
  const json comparisons = study.value("comparisons", json::array());
  if (!comparisons.empty()) {
    md += "\nFurther paired comparisons (the same images for both arms):\n\n" +
          markdown_row(comparison_header()) + "|";
    for (size_t i = 0; i < comparison_header().size(); ++i) md += "---|";
    md += "\n";
    for (const auto& c : comparisons) md += markdown_row(comparison_cells(c));
  }
  return md;
}

std::string render_study_html(const json& study) {
  const std::string baseline = study["baseline"];
  const std::vector<std::string> arms = study["arms"];
  // The label-efficiency plot: AUROC against the share of training labels, one line and band per
  // arm.
  double lo = 1, hi = 0;
  for (const auto& row : study["rows"]) {
    if (!row.contains("auroc")) continue;
    lo = std::min(lo, row["auroc"]["lo"].get<double>());
    hi = std::max(hi, row["auroc"]["hi"].get<double>());
  }
  if (lo > hi) lo = 0.4, hi = 1.0;
  SvgPlot plot("Label efficiency: test AUROC (mean over folds x seeds, 95% CI)",
               nice_axis(0, 100, 5, "training labels used (%)"),
               nice_axis(std::max(0.0, lo - 0.02), std::min(1.0, hi + 0.02), 5, "AUROC"), 620, 420);
  std::vector<LegendEntry> legend;
  for (size_t a = 0; a < arms.size(); ++a) {
    std::vector<XY> mean, lower, upper;
    for (const auto& row : study["rows"]) {
      if (row["arm"] != arms[a] || !row.contains("auroc")) continue;
      const double x = row["fraction"].get<double>() * 100;
      mean.push_back({x, row["auroc"]["mean"].get<double>()});
      lower.push_back({x, row["auroc"]["lo"].get<double>()});
      upper.push_back({x, row["auroc"]["hi"].get<double>()});
    }
    const std::string c = "c" + std::to_string(a % 6);
    plot.band(lower, upper, "band " + c);
    plot.line(mean, "line " + c);
    for (const auto& p : mean) {
      plot.point(p, 4, "pt " + c, "",
                 arms[a] + ": " + fixed(p.x, 0) + "% of labels, AUROC " + fixed(p.y, 3));
    }
    legend.push_back({arms[a], "line", "line " + c});
  }
  plot.legend(legend, Corner::kBelow);

  std::string verdict_html;
  for (const auto& v : study["verdicts"])
    verdict_html += "<li>" + html_escape(verdict_sentence(v, baseline)) + "</li>\n";
  // The table: the Markdown table's cells.
  std::string table = "<table><thead><tr>";
  for (const auto& h : table_header(baseline)) table += "<th>" + html_escape(h) + "</th>";
  table += "</tr></thead><tbody>\n";
  for (const auto& row : study["rows"]) {
    table += "<tr>";
    for (const auto& c : table_cells(row, baseline)) table += "<td>" + html_escape(c) + "</td>";
    table += "</tr>\n";
  }
  table += "</tbody></table>\n";
  const json comparisons = study.value("comparisons", json::array());
  if (!comparisons.empty()) {
    table +=
        "<h2>Further paired comparisons</h2>\n<p>The same images for both "
        "arms.</p>\n<table><thead><tr>";
    for (const auto& h : comparison_header()) table += "<th>" + html_escape(h) + "</th>";
    table += "</tr></thead><tbody>\n";
    for (const auto& c : comparisons) {
      table += "<tr>";
      for (const auto& cell : comparison_cells(c)) table += "<td>" + html_escape(cell) + "</td>";
      table += "</tr>\n";
    }
    table += "</tbody></table>\n";
  }
  std::string timing;
  for (const auto& [stage, secs] : study["timing"].items()) {
    timing += "<tr><td>" + html_escape(stage) + "</td><td>" + fixed(secs.get<double>(), 0) +
              " s</td></tr>";
  }
  const json& cfg = study["config"];
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wristssl "
         "study</title><style>\n"
         "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 "
         "1em;color:#1d2733}\n"
         "table{border-collapse:collapse;font-size:14px}td,th{border-bottom:1px solid "
         "#dde3ea;padding:4px 8px;text-align:left}td:last-child{white-space:nowrap}\n"
         ":root{--c0:#1f77b4;--c1:#d62728;--c2:#2ca02c;--c3:#9467bd;--c4:#ff7f0e;--c5:#8c564b}\n"
         "svg.plot{display:block;width:100%;height:auto;max-width:680px}\n"
         "svg .plot-title{font-size:14px;font-weight:600}svg .tick{font-size:11px;fill:#4a5562}svg "
         ".axis-label{font-size:12px}\n"
         "svg .grid line{stroke:#e9edf1}svg .axes line{stroke:#6b7683}svg "
         ".frame{fill:none;stroke:#9aa4af}\n"
         "svg .mark{fill:none;stroke-width:2.2}svg .legend-box{fill:#fff;stroke:#d6dce3}svg "
         ".legend-text{font-size:11.5px}\n"
         "svg .legend line{stroke-width:2.2}svg .band{stroke:none;fill-opacity:.15}svg "
         ".pt{stroke:#fff;stroke-width:1.5}\n"
         ".c0{stroke:var(--c0);fill:var(--c0)}.c1{stroke:var(--c1);fill:var(--c1)}.c2{stroke:var(--"
         "c2);fill:var(--c2)}\n"
         ".c3{stroke:var(--c3);fill:var(--c3)}.c4{stroke:var(--c4);fill:var(--c4)}.c5{stroke:var(--"
         "c5);fill:var(--c5)}\n"
         "svg .line{fill:none}\n</style></head><body>\n<h1>Does self-supervised pretraining pay "
         "off?</h1>\n<p>" +
         html_escape(cfg.value("description", std::string())) + "</p>\n<p>" +
         std::to_string(study["labelled_images"].get<size_t>()) +
         " labelled images; grouped stratified " + std::to_string(study["folds"].get<int>()) +
         "-fold cross-validation over " + std::to_string(study["seeds"].size()) +
         " seed(s); every image is scored once per seed by the model that never saw it. AUROC "
         "intervals are t-intervals "
         "across folds x seeds; paired comparisons use the same images for both "
         "arms.</p>\n<h2>Verdict</h2><ul>" +
         verdict_html + "</ul>\n<figure>" +
         plot.render("curve", "AUROC against the share of labels, per arm") +
         "</figure>\n<h2>Table</h2>\n" + table + "<h2>Wall time per stage</h2><table>" + timing +
         "</table>\n</body></html>\n";
}

}  // namespace wristssl::report
