#pragma once
// `wristssl listen`: a DICOM node. A PACS or router sends radiographs with C-STORE; each instance is checked,
// kept on disk, scored when its association ends, and answered with a structured report and a Secondary
// Capture (results.h), which are sent on with C-STORE to a configured destination.
//
// - Received data is written bit for bit to a file first (never parsed on the network path), then read with
//   the guarded parser: a hostile length cannot make the node allocate what the data does not hold.
// - Storage classes offered: CR, DX (for presentation and processing), Secondary Capture (and Verification).
//   A CT or MR is refused at negotiation; an accepted instance whose Modality is not a radiograph (or that is
//   a wristssl result itself) is acknowledged and skipped; one without pixel data or a Study Instance UID is
//   answered with failure status 0xC000 "cannot understand".
// - A bounded queue: when it is full the sender gets 0xA700 "out of resources" (retry later), nothing is
//   silently dropped. Instances received but not yet scored stay in STATE/incoming and are picked up again
//   after a restart. An instance sent twice (the same SOP Instance UID) is kept once; its results have the
//   same UIDs as before, so a PACS replaces them.
// - Logs name instances by a short hash of their UID, never by patient data.

#include <atomic>
#include <functional>
#include <string>

#include "wristssl/dicom/results.h"
#include "wristssl/report/heatmap.h"

namespace wristssl::dicom {

/// What scoring one file gives: the finding and the picture for the Secondary Capture.
struct Scored {
  Finding finding;
  report::Overlay picture;
};
/// Scores the radiograph in a file; throws (with a reason) when it cannot.
using Scorer = std::function<Scored(const std::string& path)>;

struct NodeOptions {
  std::string aet = "WRISTSSL";
  int port = 11112;
  std::string state_dir = "wristssl-node";  // incoming/, results/, outbox/, failed/
  std::string forward;                      // HOST:PORT:AET, or empty (results stay in state_dir/results)
  std::string forward_aet;                  // our AE title when sending; default aet
  int queue_capacity = 64;                  // instances received and not yet scored
  std::string uid_root = "2.25";
  int timeout_s = 30;                       // ACSE / DIMSE timeouts
  int max_instances = 0;                    // stop after scoring this many (tests); 0 = run until stopped
};

/// Parses HOST:PORT:AET; throws std::invalid_argument naming what is wrong.
struct Destination {
  std::string host;
  int port = 0;
  std::string aet;
};
Destination parse_destination(const std::string& text);

/// A short hash of an instance UID for logs (not reversible to the UID without the UID).
std::string instance_tag(const std::string& sop_instance_uid);

/// Runs the node until `stop` becomes true (checked at least once a second) or max_instances are scored.
/// Returns 0, or throws when the port cannot be opened.
int run_node(const NodeOptions& options, const ModelIdentity& model, const Scorer& scorer,
             const std::atomic<bool>& stop);

}  // namespace wristssl::dicom
