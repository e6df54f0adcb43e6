#include "wristssl/data/scan.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "wristssl/io/read_image.h"

namespace wristssl::data {

ScanResult scan_dataset(const Dataset& dataset, int threads,
                        const std::function<void(size_t, size_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  ScanResult result;
  result.dataset = dataset;
  const size_t n = dataset.records.size();
  std::vector<std::string> errors(n), formats(n);
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto work = [&]() {
    for (size_t i; (i = next++) < n;) {
      try {
        formats[i] = io::read_image(dataset.records[i].path).info.format;
      } catch (const io::ImageError& e) {
        errors[i] = std::string(io::error_kind_name(e.kind())) + ": " + e.reason();
      } catch (const std::exception& e) {
        errors[i] = std::string("error: ") + e.what();
      }
      const size_t d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mu);
        progress(d, n);
      }
    }
  };
  const int t = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int k = 0; k < t; ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  for (size_t i = 0; i < n; ++i) {
    if (errors[i].empty()) {
      ++result.readable_per_label[dataset.records[i].label];
      ++result.formats[formats[i]];
    } else {
      result.unreadable.emplace_back(dataset.records[i].path, errors[i]);
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

nlohmann::json scan_to_json(const ScanResult& r) {
  const Dataset& ds = r.dataset;
  nlohmann::json j;
  j["source"] = ds.source;
  j["layout"] = layout_name(ds.layout);
  j["images"] = ds.records.size();
  j["groups"] = ds.group_count();
  auto& classes = j["classes"] = nlohmann::json::object();
  for (const auto& [label, count] : ds.label_counts()) {
    const std::string name = label < 0 ? "unlabelled" : ds.class_names.at(label);
    classes[name] = {{"label", label}, {"images", count},
                     {"readable", r.readable_per_label.count(label) ? r.readable_per_label.at(label) : 0}};
  }
  j["formats"] = r.formats;
  j["dropped_rows"] = ds.dropped;
  j["missing_examples"] = ds.missing_examples;
  auto& bad = j["unreadable"] = nlohmann::json::array();
  for (const auto& [path, why] : r.unreadable) bad.push_back({{"path", path}, {"reason", why}});
  j["seconds"] = r.seconds;
  return j;
}

std::string format_scan_report(const ScanResult& r) {
  const Dataset& ds = r.dataset;
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%s (%s): %zu images, %zu groups, scanned in %.1f s\n", ds.source.c_str(),
                layout_name(ds.layout), ds.records.size(), ds.group_count(), r.seconds);
  out += line;
  for (const auto& [label, count] : ds.label_counts()) {
    const std::string name = label < 0 ? "unlabelled" : ds.class_names.at(label);
    const int ok = r.readable_per_label.count(label) ? r.readable_per_label.at(label) : 0;
    std::snprintf(line, sizeof(line), "  %-16s %6d images, %6d readable\n", name.c_str(), count, ok);
    out += line;
  }
  for (const auto& [format, count] : r.formats) {
    std::snprintf(line, sizeof(line), "  format %-9s %6d\n", format.c_str(), count);
    out += line;
  }
  for (const auto& [why, count] : ds.dropped) {
    std::snprintf(line, sizeof(line), "  rows not used (%s): %d\n", why.c_str(), count);
    out += line;
  }
  for (const auto& m : ds.missing_examples) out += "    e.g. missing " + m + "\n";
  std::snprintf(line, sizeof(line), "unreadable: %zu\n", r.unreadable.size());
  out += line;
  for (const auto& [path, why] : r.unreadable) out += "  " + path + ": " + why + "\n";
  return out;
}

}  // namespace wristssl::data
