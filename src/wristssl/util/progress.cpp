#include "wristssl/util/progress.h"

#include <unistd.h>

#include <algorithm>

namespace wristssl::util {

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  } else if (t >= 60) {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lds", t);
  }
  return buf;
}

Progress::Progress(std::string label, size_t total, std::string unit, FILE* out)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      out_(out),
      tty_(out && ::isatty(::fileno(out)) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::update(size_t done, const std::string& extra) {
  done_ = done;
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 && total_ > done ? (total_ - done) / rate : 0;
  const double frac = total_ ? static_cast<double>(done) / total_ : 1.0;
  if (tty_) {
    if (std::chrono::duration<double>(now - last_print_).count() < 0.1 && done < total_) return;
    last_print_ = now;
    constexpr int kWidth = 28;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(out_, "\r%s [%s] %5.1f%% %zu/%zu %.1f %s/s ETA %s %s\x1b[K", label_.c_str(), bar.c_str(),
                 100 * frac, done, total_, rate, unit_.c_str(), format_duration(eta).c_str(), extra.c_str());
  } else {
    const int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_ && std::chrono::duration<double>(now - last_print_).count() < 30) return;
    last_decile_ = decile;
    last_print_ = now;
    std::fprintf(out_, "%s: %zu/%zu (%.0f%%) %.1f %s/s ETA %s %s\n", label_.c_str(), done, total_, 100 * frac,
                 rate, unit_.c_str(), format_duration(eta).c_str(), extra.c_str());
  }
  std::fflush(out_);
}

void Progress::finish(const std::string& extra) {
  if (!out_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(out_, "%s%s: %zu %s in %s (%.1f %s/s) %s\n", tty_ ? "\r\x1b[K" : "", label_.c_str(), done_,
               unit_.c_str(), format_duration(elapsed).c_str(), elapsed > 0 ? done_ / elapsed : 0.0,
               unit_.c_str(), extra.c_str());
  std::fflush(out_);
}

}  // namespace wristssl::util
