// `wristssl listen`: a DICOM node that scores the radiographs sent to it.
#include <memory>

#include "commands.h"
#include "wristssl/serve/listen.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, serve::ListenOptions& o) {
  auto* cmd = app.add_subcommand("listen",
                                 "a DICOM node: receive radiographs by C-STORE, send back a "
                                 "structured report and a heatmap image");
  cmd->add_option("--model", o.model, "model bundle (default: the shipped model, README)");
  cmd->add_option("--aet", o.node.aet, "this node's AE title")->capture_default_str();
  cmd->add_option("--port", o.node.port, "port to listen on")->capture_default_str();
  cmd->add_option(
         "--state", o.node.state_dir,
         "folder for received instances and results (incoming/, results/, outbox/, failed/)")
      ->capture_default_str();
  cmd->add_option("--allow", o.node.allow,
                  "AET or AET@HOST that may send (repeatable); none: loopback peers only");
  cmd->add_option("--peers", o.node.peers_file,
                  "more senders from a JSON file: {\"allow\": [\"AET\", \"AET@HOST\", ...]}");
  cmd->add_option("--forward", o.node.forward,
                  "send the results to HOST:PORT:AET (a PACS or router)");
  cmd->add_option("--tls-key", o.node.tls_key,
                  "DICOM TLS on both links: this node's private key (PEM)");
  cmd->add_option("--tls-cert", o.node.tls_cert, "DICOM TLS: this node's certificate (PEM)");
  cmd->add_option(
      "--tls-ca", o.node.tls_ca,
      "DICOM TLS: CA certificates (PEM file or folder) that peers' certificates must chain to");
  cmd->add_flag("!--tls-optional-peer-certificate", o.node.tls_require_peer_certificate,
                "DICOM TLS: accept a sender that presents no certificate (one it presents is still "
                "verified)");
  cmd->add_option("--audit", o.node.audit, "the audit trail (default STATE/audit.jsonl)");
  cmd->add_option("--audit-max-mb", o.node.audit_max_mb, "rotate the audit trail past this size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--min-free", o.node.min_free_mb,
                  "MB that must stay free in --state; below it new instances get 0xA700")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--queue", o.node.queue_capacity,
                  "instances waiting to be scored; beyond it, senders get 0xA700 and retry")
      ->capture_default_str();
  cmd->add_option("--uid-root", o.node.uid_root, "root of the results' UIDs")
      ->capture_default_str();
  cmd->add_option("--timeout", o.node.timeout_s, "network timeouts in seconds")
      ->capture_default_str();
  cmd->add_option("--max-instances", o.node.max_instances,
                  "stop after handling this many instances (0: run until stopped)")
      ->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp32 | bf16 | auto")->capture_default_str();
  return cmd;
}

}  // namespace

serve::ListenOptions parse_listen(const std::vector<std::string>& args) {
  serve::ListenOptions o;
  parse_command(args, [&](CLI::App& app) { return add_options(app, o); });
  return o;
}

Command add_listen_command(CLI::App& app, const Globals& g) {
  auto o = std::make_shared<serve::ListenOptions>();
  return {add_options(app, *o), [o, &g] {
            o->threads = g.threads;
            return serve::run_listen(*o);
          }};
}

}  // namespace wristssl::cli
