#pragma once
// Pixels an independent decoder (PIL + numpy, scripts/make_test_references.py) read from the test files.

#include <nlohmann/json.hpp>
#include <string>

#include "test_paths.h"
#include "wristssl/util/fs.h"

namespace wristssl::testing {

inline const nlohmann::json& reference() {
  static const nlohmann::json j = nlohmann::json::parse(util::read_text(repo_path("tests/fixtures/reference.json")));
  return j;
}

}  // namespace wristssl::testing
