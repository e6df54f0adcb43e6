#include "wristssl/util/tuned.h"

#include <torch/version.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <filesystem>
#include <sstream>

#include "wristssl/util/device.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/threads.h"

namespace wristssl::util {
namespace fs = std::filesystem;

namespace {

bool tuning_off() {
  const char* env = std::getenv("WRISTSSL_TUNE");
  return env != nullptr && std::string(env) == "off";
}

nlohmann::json read_cache() {
  const std::string path = tune_cache_path();
  if (!fs::exists(path)) return nlohmann::json::object();
  std::string why = "not a JSON object";
  try {
    nlohmann::json j = nlohmann::json::parse(read_text(path));
    if (j.is_object()) return j;
  } catch (const std::exception& e) {
    why = e.what();
  }
  // Unreadable: as if untuned, said once per process (the next `wristssl tune` rewrites it).
  static std::once_flag warned;
  std::call_once(warned, [&] { std::fprintf(stderr, "warning: ignoring the tune cache %s: %s\n", path.c_str(), why.c_str()); });
  return nlohmann::json::object();
}

}  // namespace

std::string machine_key() {
  std::string model = cpuinfo_field("model name");
  if (model.empty()) model = "unknown CPU";
  const std::string flags = " " + cpuinfo_field("flags") + " ";
  std::string features;
  for (const char* f : {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}) {
    if (flags.find(std::string(" ") + f + " ") != std::string::npos) features += (features.empty() ? "" : " ") + std::string(f);
  }
  std::ostringstream s;
  s << model << " | " << available_cores() << " cores | " << (features.empty() ? "no avx2" : features) << " | libtorch "
    << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH;
  return s.str();
}

std::string tune_cache_path() {
  if (const char* dir = std::getenv("WRISTSSL_CACHE_DIR"); dir != nullptr && *dir) return std::string(dir) + "/tune.json";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg) return std::string(xdg) + "/wristssl/tune.json";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home ? home : "/tmp") + "/.cache/wristssl/tune.json";
}

std::optional<TunedChoice> cached_choice() {
  if (tuning_off()) return std::nullopt;
  const nlohmann::json cache = read_cache();
  const auto machines = cache.find("machines");
  if (machines == cache.end() || !machines->is_object()) return std::nullopt;
  const auto entry = machines->find(machine_key());
  if (entry == machines->end()) return std::nullopt;
  try {
    const nlohmann::json& c = entry->at("choice");
    TunedChoice t;
    t.threads = c.at("threads").get<int>();
    t.bf16 = c.at("precision").get<std::string>() == "bf16";
    t.views_per_s = c.value("views_per_s", 0.0);
    t.date = c.value("date", std::string());
    t.why = c.value("why", std::string());
    if (t.threads < 1 || t.threads > available_cores()) return std::nullopt;
    return t;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void store_tuning(const nlohmann::json& entry) {
  nlohmann::json cache = read_cache();
  cache["format"] = "wristssl tune 1";
  cache["machines"][machine_key()] = entry;
  const std::string path = tune_cache_path();
  fs::create_directories(fs::path(path).parent_path());
  atomic_write(path, cache.dump(2) + "\n");
}

}  // namespace wristssl::util
