#pragma once
// Where the tests find the bundled sample, and (optionally) ../shared/data for extra checks.

#include <string>

namespace wristssl::testing {

/// Absolute path of `rel` inside the repository.
std::string repo_path(const std::string& rel);

/// Absolute path of `rel` inside ../shared/data, or "" when that folder is absent (clean clone).
std::string shared_data_path(const std::string& rel);

/// A fresh empty temporary directory, removed at exit.
std::string temp_dir(const std::string& tag);

}  // namespace wristssl::testing
