#pragma once
// `wristssl run --config FILE`: the paper's whole protocol in one resumable command: split, SimCLR
// pretraining, linear probe + fine-tuning, evaluation with intervals, and the report; optionally
// the supervised baseline from random initialisation, evaluated on the same test split.

#include <nlohmann/json.hpp>
#include <string>

#include "wristssl/study/config.h"

namespace wristssl::study {

/// Runs every stage of the config (see configs/*.json and README). Each stage resumes from its own
/// checkpoint when rerun. Returns the summary JSON (also written to <out>/summary.json).
nlohmann::json run_protocol(const ProtocolConfig& config, int threads);

/// run_protocol of the config file at `config_path` (read_protocol_config).
nlohmann::json run_protocol(const std::string& config_path, int threads);

}  // namespace wristssl::study
