#pragma once
// `wristssl scan`: read every file of a dataset, count per class and group, list the unreadable ones.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"

namespace wristssl::data {

struct ScanResult {
  Dataset dataset;
  std::vector<std::pair<std::string, std::string>> unreadable;  // path, "kind: reason"
  std::map<int, int> readable_per_label;
  std::map<std::string, int> formats;                           // png / jpeg / dicom -> count
  double seconds = 0;
};

/// Decodes every record with `threads` threads (0 = all cores); never stops on a bad file.
ScanResult scan_dataset(const Dataset& dataset, int threads,
                        const std::function<void(size_t, size_t)>& progress = nullptr);

/// The summary as JSON (counts per class, groups, formats, dropped rows, unreadable files).
nlohmann::json scan_to_json(const ScanResult& result);

/// A human-readable summary: counts per class, groups, formats, then each unreadable file and why.
std::string format_scan_report(const ScanResult& result);

}  // namespace wristssl::data
