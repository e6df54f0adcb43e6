#include "wristssl/train/options_json.h"

using nlohmann::json;

namespace wristssl::train {

namespace {

// The one list of DatasetOptions' fields ("layout" is an enum, handled apart).
const auto kVisitData = [](auto& o, auto&& f) {
  f("data", o.data);
  f("image_dirs", o.image_dirs);
  f("exclude_cast", o.exclude_cast);
  f("exclude_metal", o.exclude_metal);
  f("exclude_uncertain", o.exclude_uncertain);
  f("negative_class", o.negative_class);
  f("positive_class", o.positive_class);
  f("path_column", o.path_column);
  f("label_column", o.label_column);
  f("group_column", o.group_column);
  f("where", o.where);
  f("boxes", o.boxes);
  f("box_class", o.box_class);
};

}  // namespace

json data_options_to_json(const data::DatasetOptions& o) {
  json j = options_to_json(o, kVisitData);
  j["layout"] = data::layout_name(o.layout);
  return j;
}

void data_options_from_json(const json& j, data::DatasetOptions& o) {
  if (j.is_string()) {
    o.data = j.get<std::string>();
    return;
  }
  options_from_json(j, o, kVisitData, data_options_to_json(o), "data");
  if (j.contains("layout")) o.layout = data::parse_layout(j["layout"].get<std::string>());
}

}  // namespace wristssl::train
