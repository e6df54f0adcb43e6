#pragma once
// JSON text from values that may hold bytes from outside (file names, DICOM attributes, error
// messages that quote them): bytes that are not valid UTF-8 become U+FFFD instead of making
// nlohmann::json throw, so one odd file name or Latin-1 attribute cannot stop a whole run or an
// answer.

#include <string>

#include <nlohmann/json.hpp>

namespace wristssl::util {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}
inline std::string json_text(const nlohmann::ordered_json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace wristssl::util
