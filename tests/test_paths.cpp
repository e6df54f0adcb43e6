#include "test_paths.h"

#include <cstdlib>
#include <filesystem>
#include <random>

namespace fs = std::filesystem;

namespace wristssl::testing {

std::string repo_path(const std::string& rel) { return std::string(WRISTSSL_SOURCE_DIR) + "/" + rel; }

std::string shared_data_path(const std::string& rel) {
  const char* env = std::getenv("WRISTSSL_SHARED_DATA");
  fs::path root = env ? fs::path(env) : fs::path(WRISTSSL_SOURCE_DIR) / ".." / "shared" / "data";
  fs::path p = root / rel;
  return fs::exists(p) ? fs::canonical(p).string() : std::string();
}

std::string temp_dir(const std::string& tag) {
  std::random_device rd;
  fs::path p = fs::temp_directory_path() / ("wristssl_" + tag + "_" + std::to_string(rd()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace wristssl::testing
