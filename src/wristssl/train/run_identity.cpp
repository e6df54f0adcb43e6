#include "wristssl/train/run_identity.h"

#include "wristssl/distributed/group.h"

namespace wristssl::train {

void require_same_run(const nlohmann::json& config, const std::vector<std::string>& keys,
                      size_t training_images) {
  distributed::Group* group = distributed::group();
  if (!group) return;
  for (const std::string& key : keys)
    if (config.contains(key)) group->require_same("--" + key, config[key].dump());
  group->require_same("training images", std::to_string(training_images));
}

}  // namespace wristssl::train
