#pragma once
// Options structs to and from JSON (config files, RUN/config.json) from ONE list of fields per
// struct: a visitor `visit(o, f)` calls f("key", o.field) for every field, for const and non-const
// o alike.

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "wristssl/data/dataset.h"

namespace wristssl::train {

/// A config's section `key`: its object, or an empty object when the key is absent or null.
inline nlohmann::json config_section(const nlohmann::json& j, const char* key) {
  return j.contains(key) && !j[key].is_null() ? j[key] : nlohmann::json::object();
}

/// A run command's options from `j` without what a run records beside them in RUN/config.json
/// ("resolved", "world_size"), so that file works as a --config and repeats the run.
inline nlohmann::json run_options(nlohmann::json j) {
  j.erase("resolved");
  j.erase("world_size");
  return j;
}

/// Every field `visit` names, as a JSON object.
template <class O, class Visit>
nlohmann::json options_to_json(const O& o, Visit&& visit) {
  nlohmann::json j = nlohmann::json::object();
  visit(o, [&](const char* key, const auto& field) { j[key] = field; });
  return j;
}

/// Sets the fields `visit` names from the keys present in `j`; `known` holds every key allowed (the
/// visited ones and any the caller reads itself) besides "description", which any config may carry
/// for its readers. Throws naming the first unknown key.
template <class O, class Visit>
void options_from_json(const nlohmann::json& j, O& o, Visit&& visit, const nlohmann::json& known,
                       const char* what) {
  for (const auto& item : j.items()) {
    if (!known.contains(item.key()) && item.key() != "description") {
      throw std::runtime_error(std::string("unknown ") + what + " option '" + item.key() + "'");
    }
  }
  visit(o, [&](const char* key, auto& field) {
    if (j.contains(key)) field = j.at(key).template get<std::decay_t<decltype(field)>>();
  });
}

/// DatasetOptions to and from JSON (a run's "data" section; a plain string is the data path alone).
nlohmann::json data_options_to_json(const data::DatasetOptions& o);
void data_options_from_json(const nlohmann::json& j, data::DatasetOptions& o);

}  // namespace wristssl::train
