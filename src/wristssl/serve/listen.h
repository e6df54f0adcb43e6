#pragma once
// `wristssl listen`: the DICOM node (dicom/node.h) scoring with a model bundle.

#include <string>

#include "wristssl/dicom/node.h"

namespace wristssl::serve {

struct ListenOptions {
  std::string model;  // the bundle
  std::string precision = "fp32";
  int threads = 0;
  dicom::NodeOptions node;
};

/// Runs the node until SIGINT or SIGTERM (the instance being scored is finished; the rest stay
/// queued on disk for the next start). Returns the exit status.
int run_listen(const ListenOptions& options);

}  // namespace wristssl::serve
