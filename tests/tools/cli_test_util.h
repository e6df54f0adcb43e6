#pragma once
// What the command-line tests share: a command line written as one string, and a config file to
// point
// --config at.

#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"
#include "wristssl/util/fs.h"

namespace wristssl::testing {

/// `line` split at spaces (none of the tests' values holds one).
inline std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

/// `text` written to a fresh temporary folder as NAME.json; returns its path.
inline std::string write_config(const std::string& name, const std::string& text) {
  const std::string path = temp_dir("cli_" + name) + "/" + name + ".json";
  util::atomic_write(path, text);
  return path;
}

}  // namespace wristssl::testing
