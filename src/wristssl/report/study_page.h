#pragma once
// The study's results for people: the table as Markdown (OUT/study.md) and a self-contained page
// with the verdict and the label-efficiency plot (OUT/study.html), both from the JSON that
// study::run_study writes.

#include <nlohmann/json.hpp>
#include <string>

namespace wristssl::report {

/// The study's table as Markdown (one row per arm and fraction), its verdicts and further
/// comparisons.
std::string render_study_markdown(const nlohmann::json& study);

/// The study's HTML page (self-contained: inline SVG plot).
std::string render_study_html(const nlohmann::json& study);

}  // namespace wristssl::report
