#pragma once
// `wristssl listen`: a DICOM node. A PACS or router sends radiographs with C-STORE; each instance
// is checked, kept on disk, scored when its association ends, and answered with a structured report
// and a Secondary Capture (results.h), which are sent on with C-STORE to a configured destination.
//
// - Received data is written bit for bit to a file first (never parsed on the network path), then
// read with
//   the guarded parser: a hostile length cannot make the node allocate what the data does not hold.
// - Storage classes offered: CR, DX (for presentation and processing), Secondary Capture (and
// Verification).
//   A CT or MR is refused at negotiation; an accepted instance whose Modality is not a radiograph
//   (or that is a wristssl result itself) is acknowledged and skipped; one without pixel data or a
//   Study Instance UID is answered with failure status 0xC000 "cannot understand".
// - A bounded queue: when it is full the sender gets 0xA700 "out of resources" (retry later),
// nothing is
//   silently dropped. Instances received but not yet scored stay in STATE/incoming and are picked
//   up again after a restart. An instance sent twice (the same SOP Instance UID) is kept once; its
//   results have the same UIDs as before, so a PACS replaces them.
// - Logs name instances by a short hash of their UID, never by patient data.
// - Who may send: an allowlist of calling AE titles (and hosts); without one, loopback peers only.
// - DICOM TLS (Part 15, the BCP 195 non-downgrading profile) on both links when a key and
// certificate are
//   given: peers must present a certificate that chains to --tls-ca (refusals are logged with the
//   reason).
// - An audit trail (util/audit.h): one fsynced JSON line per association refused, instance
// received, result
//   written and object sent, with hashed UIDs (docs/dicom.md lists the fields).
// - A nearly full disk: new instances get 0xA700 (retry later) before anything is written; results
// that
//   cannot be written leave their instance in incoming/ and are tried again, never moved to
//   failed/.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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
  // Who may send: "AET" (from any host) or "AET@HOST" (HOST an IP address or a name resolved at
  // start). Empty: any AE title, from a loopback address only. Others are refused with "calling AE
  // title not recognised", and the log names their AE title and address.
  std::vector<std::string> allow;
  std::string peers_file;  // more entries: a JSON file {"allow": ["AET", "AET@HOST", ...]}
                           // (read_peers_file)
  // DICOM TLS on both links (the port it listens on and the link to `forward`): this node's private
  // key and certificate (PEM), and the CA certificates (a PEM file or a folder of them) that peers'
  // certificates must chain to. All three or none.
  std::string tls_key, tls_cert, tls_ca;
  bool tls_require_peer_certificate = true;  // inbound: false accepts a peer with no certificate
  std::string audit;                         // the audit trail; empty: STATE/audit.jsonl
  std::uint64_t audit_max_mb = 64;           // rotated past this size (10 files kept)
  std::uint64_t min_free_mb = 64;  // below this free space in STATE, new instances get 0xA700
};

/// An allowed peer: its calling AE title and, optionally, the addresses its host has.
struct Peer {
  std::string aet;
  std::string host;                    // as given; empty: any host
  std::vector<std::string> addresses;  // numeric, as the node sees peers (resolve_peer fills them)
};

/// Parses "AET" or "AET@HOST" (an AE title of 1 to 16 characters, no backslash or control
/// character; a non-empty host); throws std::invalid_argument naming the entry and what is wrong.
Peer parse_peer(const std::string& text);

/// The peer with its host's addresses (getaddrinfo); throws std::invalid_argument naming a host
/// that does not resolve.
Peer resolve_peer(Peer peer);

/// Whether `address` (as DCMTK reports the caller: an IP address, perhaps with ":port") is
/// loopback.
bool is_loopback(const std::string& address);

/// Whether a caller may send: with `allow` empty, a loopback caller only; otherwise an entry with
/// its AE title (exactly) and either no host or one of the host's addresses.
bool peer_allowed(const std::vector<Peer>& allow, const std::string& calling_aet,
                  const std::string& address);

/// The entries of a peers file: a JSON object {"allow": ["AET", "AET@HOST", ...]} (each parsed as
/// by parse_peer). Throws std::invalid_argument naming the file and what is wrong (unreadable, not
/// JSON, no "allow" array, an entry that is not a string or not a valid peer).
std::vector<std::string> read_peers_file(const std::string& path);

/// Parses HOST:PORT:AET; throws std::invalid_argument naming what is wrong.
struct Destination {
  std::string host;
  int port = 0;
  std::string aet;
};
Destination parse_destination(const std::string& text);

/// A short hash of an instance UID for logs (not reversible to the UID without the UID).
std::string instance_tag(const std::string& sop_instance_uid);

/// Megabytes free for an unprivileged writer on the file system holding `path` (statvfs); throws
/// std::runtime_error naming the path when it cannot be queried.
std::uint64_t free_megabytes(const std::string& path);

/// Runs the node until `stop` becomes true (checked at least once a second) or max_instances are scored.
/// Returns 0, or throws when the port cannot be opened.
int run_node(const NodeOptions& options, const ModelIdentity& model, const Scorer& scorer,
             const std::atomic<bool>& stop);

}  // namespace wristssl::dicom
