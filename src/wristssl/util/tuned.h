#pragma once
// What `wristssl tune` measured on this machine, cached per machine, so that every command's defaults
// (--threads 0, --precision auto) are the fastest configuration measured here, not a guess.
//
// The cache is one JSON file, $WRISTSSL_CACHE_DIR/tune.json (default $XDG_CACHE_HOME/wristssl, else
// ~/.cache/wristssl), holding an entry per machine key: the CPU model, the cores this process may use, the
// CPU features that decide precision (avx512_bf16, amx_bf16, amx_tile) and the LibTorch version. A machine
// whose key changes (another CPU, another core count) is untuned until measured again.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace wristssl::util {

/// The fastest configuration measured on this machine.
struct TunedChoice {
  int threads = 0;
  bool bf16 = false;
  double views_per_s = 0;  // its training-step throughput in the measurement
  std::string date;        // when it was measured (UTC, ISO 8601)
  std::string why;         // one line: what it beat, by how much
};

/// This machine's key, e.g. "Intel(R) Xeon(R) Processor | 2 cores | amx_bf16 amx_tile avx512_bf16 avx512f avx2 | libtorch 1.13.0"
/// (the version LibTorch's headers report).
std::string machine_key();

/// The cache file's path (not created).
std::string tune_cache_path();

/// The cached choice for this machine, if one was measured; WRISTSSL_TUNE=off ignores the cache.
std::optional<TunedChoice> cached_choice();

/// Stores `entry` (the whole measurement: its "choice" object must hold threads, precision, views_per_s, date
/// and why) under this machine's key, keeping other machines' entries; written atomically.
void store_tuning(const nlohmann::json& entry);

}  // namespace wristssl::util
