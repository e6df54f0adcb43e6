#pragma once
// `wristssl serve`: a model bundle behind HTTP. KServe's Open Inference Protocol v2 (REST) for
// systems, POST /v1/predict for a file, a page at / for a person, Prometheus metrics, one JSON log
// line per request (never patient data, never an uploaded image on disk), an optional audit trail,
// dynamic batching with a bounded queue, bearer tokens, TLS, and a graceful stop on SIGTERM.

#include <cstdint>
#include <memory>
#include <string>

namespace wristssl::serve {

struct ServeOptions {
  std::string model;                // the bundle
  std::string host = "127.0.0.1";   // loopback by default
  int port = 8080;                  // 0: any free port (tests)
  std::string token_file;           // bearer token (first line); empty: no token
  std::string tls_cert, tls_key;    // HTTPS when both are set
  int max_batch = 8;                // images per forward pass
  int max_delay_ms = 5;             // how long the first request of a batch waits for company
  int queue = 64;                   // requests waiting; more get 503 with Retry-After
  int max_body_mb = 64;
  int read_timeout_s = 10, write_timeout_s = 10;
  int http_threads = 32;            // connections served at once (idle ones cost a blocked thread)
  int threads = 0;                  // LibTorch threads (0 = all cores)
  std::string precision = "fp32";
  bool log = true;                  // one JSON line per request on stderr
  std::string audit;  // audit trail (util/audit.h): one fsynced line per request; empty: none
  std::uint64_t audit_max_mb = 64;  // rotated past this size (10 files kept)
};

/// A running server (in its own threads) for tests and for run_serve.
class Server {
 public:
  explicit Server(const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// Binds and starts serving in the background; returns the port (useful with port 0). Throws when the
  /// address cannot be bound.
  int start();
  /// Stops taking new work (503), finishes what is in flight, then closes. Idempotent.
  void stop();
  /// The model's name in URLs (/v2/models/<name>).
  const std::string& model_name() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Serves until SIGTERM or SIGINT, then stops gracefully. Returns the exit status.
int run_serve(const ServeOptions& options);

}  // namespace wristssl::serve
