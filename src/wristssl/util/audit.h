#pragma once
// An append-only audit trail: one JSON object per line, written with one write() and fdatasync()'d
// before append() returns, so that a record the caller went on from is on disk. Each record gets
// the time (UTC, ms), a sequence number and `prev`, the SHA-256 (16 hex) of the line before it, so
// that a line removed, changed or reordered breaks the chain (verify_audit_chain). When the file
// would pass max_bytes it is renamed to FILE.1 (FILE.1 to FILE.2, ..., keeping `keep`) and a new
// one begun; the chain and the sequence go on across files. Callers put no patient data in a
// record: identifiers go in as audit_hash(...) of themselves.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wristssl::util {

/// "YYYY-MM-DDTHH:MM:SSZ", or with milliseconds "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string utc_timestamp(
    std::chrono::system_clock::time_point t = std::chrono::system_clock::now(),
    bool millis = false);

/// The first 32 hex digits of the SHA-256 of `text` (how the audit trail names a UID): the security
/// office finds a study with `printf %s UID | sha256sum | cut -c1-32`. Empty text gives "".
std::string audit_hash(const std::string& text);

struct AuditOptions {
  std::string path;                     // the file (its folder is created)
  std::uint64_t max_bytes = 64u << 20;  // rotate before a line would take the file past this
  int keep = 10;                        // rotated files kept: FILE.1 (newest) ... FILE.keep
};

class AuditTrail {
 public:
  /// Opens (creates, mode 0600) the file and continues the chain from its last line. Throws
  /// std::runtime_error naming the path when it cannot be opened.
  explicit AuditTrail(AuditOptions options);
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  /// Appends `record` (an object) with "time", "seq" and "prev" added in front. Thread-safe.
  /// Returns false (and says so on stderr, once per run of failures, naming the file and the
  /// reason) when the line could not be written and synced, e.g. on a full disk.
  bool append(const nlohmann::json& record);

  const std::string& path() const { return o_.path; }

 private:
  void open_locked();
  bool rotate_locked();

  AuditOptions o_;
  std::mutex mutex_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t seq_ = 0;
  std::string prev_;
  bool failing_ = false;
};

/// Checks the chain of the audit files given oldest first (FILE.N ... FILE.1, FILE): every line
/// parses, and its `prev` is the hash of the line before it (the first line of the first file is
/// not checked against anything) and `seq` goes up by one. Returns "" when it holds, else what
/// breaks it and where.
std::string verify_audit_chain(const std::vector<std::string>& files_oldest_first);

}  // namespace wristssl::util
