// `wristssl serve`: a model bundle behind HTTP.
#include <memory>

#include "commands.h"
#include "wristssl/serve/server.h"

namespace wristssl::cli {
namespace {

CLI::App* add_options(CLI::App& app, serve::ServeOptions& o) {
  auto* cmd = app.add_subcommand(
      "serve", "serve a bundle over HTTP: Open Inference Protocol v2, /v1/predict, a page at /");
  cmd->add_option("--model", o.model, "model bundle (default: the shipped model, README)");
  cmd->add_option("--host", o.host, "address to listen on (loopback by default)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "port")->capture_default_str();
  cmd->add_option("--token-file", o.token_file,
                  "file whose first line is the bearer token every request must carry");
  cmd->add_option("--tls-cert", o.tls_cert, "PEM certificate: serve HTTPS");
  cmd->add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--max-batch", o.max_batch, "images per forward pass")->capture_default_str();
  cmd->add_option("--max-delay-ms", o.max_delay_ms,
                  "how long a request waits for others to batch with")
      ->capture_default_str();
  cmd->add_option("--queue", o.queue, "images waiting; beyond it, 503 with Retry-After")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", o.max_body_mb, "largest request body")->capture_default_str();
  cmd->add_option("--read-timeout", o.read_timeout_s, "seconds a client may take to send a request")
      ->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads, "connections served at once")
      ->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp32 | bf16 | auto")->capture_default_str();
  cmd->add_flag("!--no-log", o.log, "no JSON log line per request");
  cmd->add_option(
      "--audit", o.audit,
      "append an audit record per request to this file (fsynced, hashed bodies; none by default)");
  cmd->add_option("--audit-max-mb", o.audit_max_mb, "rotate the audit trail past this size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return cmd;
}

}  // namespace

serve::ServeOptions parse_serve(const std::vector<std::string>& args) {
  serve::ServeOptions o;
  parse_command(args, [&](CLI::App& app) { return add_options(app, o); });
  return o;
}

Command add_serve_command(CLI::App& app, const Globals& g) {
  auto o = std::make_shared<serve::ServeOptions>();
  return {add_options(app, *o), [o, &g] {
            o->threads = g.threads;
            return serve::run_serve(*o);
          }};
}

}  // namespace wristssl::cli
