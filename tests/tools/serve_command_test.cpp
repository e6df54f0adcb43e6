#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"
#include "wristssl/serve/server.h"

namespace wristssl::cli {
namespace {

TEST(CliServe, FlagsSetTheOptions) {
  const serve::ServeOptions o = parse_serve(
      {"--model",       "m.wristssl", "--host",         "0.0.0.0",  "--port",         "9000",
       "--token-file",  "token",      "--tls-cert",     "cert.pem", "--tls-key",      "key.pem",
       "--max-batch",   "4",          "--max-delay-ms", "20",       "--queue",        "16",
       "--max-body-mb", "8",          "--read-timeout", "30",       "--http-threads", "6",
       "--precision",   "auto",       "--no-log"});
  EXPECT_EQ(o.model, "m.wristssl");
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.token_file, "token");
  EXPECT_EQ(o.tls_cert, "cert.pem");
  EXPECT_EQ(o.tls_key, "key.pem");
  EXPECT_EQ(o.max_batch, 4);
  EXPECT_EQ(o.max_delay_ms, 20);
  EXPECT_EQ(o.queue, 16);
  EXPECT_EQ(o.max_body_mb, 8);
  EXPECT_EQ(o.read_timeout_s, 30);
  EXPECT_EQ(o.http_threads, 6);
  EXPECT_EQ(o.precision, "auto");
  EXPECT_FALSE(o.log);
}

TEST(CliServe, Defaults) {
  const serve::ServeOptions o = parse_serve({"--model", "m"});
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.token_file, "");
  EXPECT_EQ(o.max_batch, 8);
  EXPECT_EQ(o.max_delay_ms, 5);
  EXPECT_EQ(o.queue, 64);
  EXPECT_EQ(o.max_body_mb, 64);
  EXPECT_EQ(o.read_timeout_s, 10);
  EXPECT_EQ(o.write_timeout_s, 10);  // no flag
  EXPECT_EQ(o.http_threads, 32);
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_TRUE(o.log);
  EXPECT_EQ(o.audit, "");  // no audit trail unless asked
}

TEST(CliServe, AuditTrail) {
  const serve::ServeOptions o =
      parse_serve({"--audit", "/var/log/wristssl/serve.jsonl", "--audit-max-mb", "16"});
  EXPECT_EQ(o.audit, "/var/log/wristssl/serve.jsonl");
  EXPECT_EQ(o.audit_max_mb, 16u);
  EXPECT_THROW(parse_serve({"--audit-max-mb", "0"}), CLI::ParseError);
}

TEST(CliServe, MissingOrBadValuesAreRefused) {
  EXPECT_EQ(parse_serve({"--port", "9000"}).model, "");  // the shipped model
  EXPECT_THROW(parse_serve({"--model", "m", "--port", "http"}), CLI::ParseError);
  EXPECT_THROW(parse_serve({"--model", "m", "--write-timeout", "5"}), CLI::ParseError);
  EXPECT_THROW(parse_serve({"--model", "m", "extra"}), CLI::ParseError);
}

}  // namespace
}  // namespace wristssl::cli
