#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"
#include "wristssl/serve/listen.h"

namespace wristssl::cli {
namespace {

TEST(CliListen, FlagsSetTheOptions) {
  const serve::ListenOptions o = parse_listen({"--model",         "m.wristssl",
                                               "--aet",           "FRACTURES",
                                               "--port",          "4242",
                                               "--state",         "node",
                                               "--forward",       "pacs.local:104:PACS",
                                               "--queue",         "8",
                                               "--uid-root",      "1.2.826.0.1",
                                               "--timeout",       "5",
                                               "--max-instances", "3",
                                               "--precision",     "bf16"});
  EXPECT_EQ(o.model, "m.wristssl");
  EXPECT_EQ(o.node.aet, "FRACTURES");
  EXPECT_EQ(o.node.port, 4242);
  EXPECT_EQ(o.node.state_dir, "node");
  EXPECT_EQ(o.node.forward, "pacs.local:104:PACS");
  EXPECT_EQ(o.node.queue_capacity, 8);
  EXPECT_EQ(o.node.uid_root, "1.2.826.0.1");
  EXPECT_EQ(o.node.timeout_s, 5);
  EXPECT_EQ(o.node.max_instances, 3);
  EXPECT_EQ(o.precision, "bf16");
}

TEST(CliListen, Defaults) {
  const serve::ListenOptions o = parse_listen({"--model", "m"});
  EXPECT_EQ(o.node.aet, "WRISTSSL");
  EXPECT_EQ(o.node.port, 11112);
  EXPECT_EQ(o.node.state_dir, "wristssl-node");
  EXPECT_EQ(o.node.forward, "");
  EXPECT_EQ(o.node.queue_capacity, 64);
  EXPECT_EQ(o.node.uid_root, "2.25");
  EXPECT_EQ(o.node.timeout_s, 30);
  EXPECT_EQ(o.node.max_instances, 0);
  EXPECT_EQ(o.precision, "fp32");
  EXPECT_TRUE(o.node.allow.empty());  // loopback senders only
  EXPECT_EQ(o.node.tls_key, "");      // no TLS unless asked
  EXPECT_TRUE(o.node.tls_require_peer_certificate);
  EXPECT_EQ(o.node.audit, "");  // STATE/audit.jsonl
  EXPECT_EQ(o.node.audit_max_mb, 64u);
  EXPECT_EQ(o.node.min_free_mb, 64u);
}

TEST(CliListen, TlsAuditAndFreeSpace) {
  const serve::ListenOptions o =
      parse_listen({"--tls-key", "k.pem", "--tls-cert", "c.pem", "--tls-ca", "ca.pem",
                    "--tls-optional-peer-certificate", "--audit", "/var/log/wristssl/audit.jsonl",
                    "--audit-max-mb", "8", "--min-free", "500"});
  EXPECT_EQ(o.node.tls_key, "k.pem");
  EXPECT_EQ(o.node.tls_cert, "c.pem");
  EXPECT_EQ(o.node.tls_ca, "ca.pem");
  EXPECT_FALSE(o.node.tls_require_peer_certificate);
  EXPECT_EQ(o.node.audit, "/var/log/wristssl/audit.jsonl");
  EXPECT_EQ(o.node.audit_max_mb, 8u);
  EXPECT_EQ(o.node.min_free_mb, 500u);
  EXPECT_THROW(parse_listen({"--min-free", "-1"}), CLI::ParseError);
}

TEST(CliListen, AllowIsRepeatable) {
  const serve::ListenOptions o =
      parse_listen({"--allow", "MODALITY", "--allow", "ROUTER@10.0.0.5"});
  EXPECT_EQ(o.node.allow, (std::vector<std::string>{"MODALITY", "ROUTER@10.0.0.5"}));
  EXPECT_EQ(parse_listen({"--peers", "/etc/wristssl/peers.json"}).node.peers_file,
            "/etc/wristssl/peers.json");
}

TEST(CliListen, MissingOrBadValuesAreRefused) {
  EXPECT_EQ(parse_listen({"--aet", "X"}).model, "");  // the shipped model
  EXPECT_THROW(parse_listen({"--model", "m", "--port", "dicom"}), CLI::ParseError);
  EXPECT_THROW(parse_listen({"--model", "m", "--max-instances", "1.5"}), CLI::ParseError);
}

}  // namespace
}  // namespace wristssl::cli
