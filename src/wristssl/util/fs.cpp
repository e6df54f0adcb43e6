#include "wristssl/util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace wristssl::util {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err = errno) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(err));
}

}  // namespace

void atomic_write(const std::string& path, std::string_view bytes) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string tmp = (dir / ("." + target.filename().string() + ".tmpXXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail("cannot create a temp file for", path);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;  // before close and unlink can change it
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot sync", path, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename into", path, err);
  }
  sync_folder(dir.string());
}

int remove_atomic_write_leftovers(const std::string& folder) {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(".tmp");
    // atomic_write's temp name: "." + the file's name + ".tmp" + six characters from mkstemp.
    if (name.size() > 11 && name[0] == '.' && at != std::string::npos && at + 10 == name.size() &&
        fs::remove(e.path(), ec))
      ++removed;
  }
  return removed;
}

void sync_folder(const std::string& folder) {
  const int dfd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace wristssl::util
