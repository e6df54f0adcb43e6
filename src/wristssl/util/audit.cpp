#include "wristssl/util/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "wristssl/util/fs.h"
#include "wristssl/util/hash.h"
#include "wristssl/util/json_text.h"

namespace wristssl::util {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string line_hash(const std::string& line) {
  return sha256_hex(line.data(), line.size()).substr(0, 16);
}

// The last complete line of a file ("" when none).
std::string last_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - (1 << 20));
  in.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  const size_t nl = tail.rfind('\n');
  return nl == std::string::npos ? (from == 0 ? tail : "") : tail.substr(nl + 1);
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point t, bool millis) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (millis) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    char frac[8];
    std::snprintf(frac, sizeof(frac), ".%03d", static_cast<int>(ms < 0 ? ms + 1000 : ms));
    out += frac;
  }
  return out + "Z";
}

std::string audit_hash(const std::string& text) {
  if (text.empty()) return "";
  return sha256_hex(text.data(), text.size()).substr(0, 32);
}

AuditTrail::AuditTrail(AuditOptions options) : o_(std::move(options)) {
  if (o_.path.empty()) throw std::runtime_error("audit trail: no file given");
  if (o_.keep < 1) o_.keep = 1;
  const fs::path p(o_.path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  // Continue the chain from the newest line, in this file or (just after a rotation) the one
  // before.
  std::string last = last_line(o_.path);
  if (last.empty()) last = last_line(o_.path + ".1");
  if (!last.empty()) {
    prev_ = line_hash(last);
    try {
      seq_ = json::parse(last).value("seq", std::uint64_t{0});
    } catch (const std::exception&) {
      // A damaged last line: the chain goes on from its hash; verify_audit_chain will point at it.
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  open_locked();
}

AuditTrail::~AuditTrail() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditTrail::open_locked() {
  fd_ = ::open(o_.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw std::runtime_error("audit trail " + o_.path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  // A line cut short by a crash mid-write is ended, so the next record starts on its own line.
  if (size_ > 0) {
    char c = '\n';
    if (::pread(fd_, &c, 1, static_cast<off_t>(size_ - 1)) == 1 && c != '\n' &&
        ::write(fd_, "\n", 1) == 1)
      ++size_;
  }
}

bool AuditTrail::rotate_locked() {
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(o_.path + "." + std::to_string(o_.keep), ec);
  for (int i = o_.keep - 1; i >= 1; --i) {
    const std::string from = o_.path + "." + std::to_string(i);
    if (fs::exists(from)) fs::rename(from, o_.path + "." + std::to_string(i + 1), ec);
  }
  fs::rename(o_.path, o_.path + ".1", ec);
  const bool renamed = !ec;
  open_locked();
  sync_folder(fs::path(o_.path).parent_path().string());
  return renamed;
}

bool AuditTrail::append(const json& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The time, the sequence and the chain first, then the record's fields.
  nlohmann::ordered_json line = {{"time", utc_timestamp(std::chrono::system_clock::now(), true)},
                                 {"seq", seq_ + 1},
                                 {"prev", prev_}};
  for (const auto& [k, v] : record.items()) line[k] = v;
  const std::string text = json_text(line);
  std::string out = text + "\n";
  const char* failure = nullptr;
  int err = 0;
  try {
    if (fd_ < 0) open_locked();
    if (size_ > 0 && size_ + out.size() > o_.max_bytes) rotate_locked();
  } catch (const std::exception&) {
    failure = "cannot open";
    err = errno;
  }
  if (!failure) {
    const ssize_t n = ::write(fd_, out.data(), out.size());
    if (n != static_cast<ssize_t>(out.size())) {
      err = n < 0 ? errno : ENOSPC;
      failure = "cannot write";
      // Take back a partial line, so that the file holds whole records only.
      if (n > 0) {
        const int undone = ::ftruncate(fd_, static_cast<off_t>(size_));
        (void)undone;
      }
    } else if (::fdatasync(fd_) != 0) {
      err = errno;
      failure = "cannot sync";
      size_ += out.size();
    } else {
      size_ += out.size();
    }
  }
  if (failure) {
    if (!failing_)
      std::fprintf(stderr, "audit: %s %s: %s; records are missing until it can be written again\n",
                   failure, o_.path.c_str(), std::strerror(err));
    failing_ = true;
    return false;
  }
  if (failing_) std::fprintf(stderr, "audit: writing %s again\n", o_.path.c_str());
  failing_ = false;
  ++seq_;
  prev_ = line_hash(text);
  return true;
}

std::string verify_audit_chain(const std::vector<std::string>& files) {
  std::string prev;
  std::uint64_t seq = 0;
  bool first = true;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return f + ": cannot be read";
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      const std::string where = f + ":" + std::to_string(n);
      json j;
      try {
        j = json::parse(text);
      } catch (const std::exception&) {
        return where + ": not a JSON record";
      }
      const std::string p = j.value("prev", std::string("?"));
      const std::uint64_t s = j.value("seq", std::uint64_t{0});
      if (!first && p != prev)
        return where + ": prev " + p + " is not the hash of the line before (" + prev + ")";
      if (!first && s != seq + 1)
        return where + ": seq " + std::to_string(s) + " does not follow " + std::to_string(seq);
      first = false;
      prev = line_hash(text);
      seq = s;
    }
  }
  return "";
}

}  // namespace wristssl::util
