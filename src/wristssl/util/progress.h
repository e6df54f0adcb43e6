#pragma once
// Progress for long work: a bar with percent, rate and ETA on a terminal, plain lines otherwise
// (one every 10% or 30 s, so logs stay greppable).

#include <chrono>
#include <cstdio>
#include <string>

namespace wristssl::util {

class Progress {
 public:
  /// `label` prefixes every line; `unit` names what is counted ("images"); `out` nullptr: silent (e.g. on
  /// the ranks of a distributed job other than rank 0).
  Progress(std::string label, size_t total, std::string unit = "images", FILE* out = stderr);
  /// Reports that `done` of total are finished (call from one thread at a time).
  void update(size_t done, const std::string& extra = "");
  /// Ends the bar with a final line.
  void finish(const std::string& extra = "");

 private:
  std::string label_, unit_;
  size_t total_;
  FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  int last_decile_ = -1;
  size_t done_ = 0;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace wristssl::util
