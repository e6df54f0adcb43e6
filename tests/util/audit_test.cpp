#include "wristssl/util/audit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "test_paths.h"

namespace wristssl::util {
namespace {

using json = nlohmann::json;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(Audit, TimestampsAndHashes) {
  using namespace std::chrono;
  const system_clock::time_point t{milliseconds(86400000LL * 365 + 1234)};
  EXPECT_EQ(utc_timestamp(t, true), "1971-01-01T00:00:01.234Z");
  EXPECT_EQ(utc_timestamp(t, false), "1971-01-01T00:00:01Z");
  // SHA-256("abc") from FIPS 180-2, appendix B.1.
  EXPECT_EQ(audit_hash("abc"), "ba7816bf8f01cfea414140de5dae2223");
  EXPECT_EQ(audit_hash(""), "");
}

TEST(Audit, AppendsAChainedRecordPerCallAndContinuesAfterReopening) {
  const std::string path = testing::temp_dir("audit") + "/node/audit.jsonl";
  {
    AuditTrail a({path});
    EXPECT_TRUE(a.append({{"event", "received"}, {"instance", audit_hash("1.2.3")}}));
    EXPECT_TRUE(a.append({{"event", "scored"}, {"decision", "fracture"}}));
  }
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // nobody else reads who sent what
  {
    AuditTrail a({path});
    EXPECT_TRUE(a.append({{"event", "sent"}}));
  }
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 3u);
  const json first = json::parse(lines[0]), third = json::parse(lines[2]);
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], "");
  EXPECT_EQ(first["event"], "received");
  EXPECT_EQ(first["instance"], audit_hash("1.2.3"));
  EXPECT_EQ(first["time"].get<std::string>().size(), 24u);
  EXPECT_EQ(third["seq"], 3);  // the sequence and the chain go on after a restart
  EXPECT_EQ(third["prev"], audit_hash(lines[1]).substr(0, 16));
  EXPECT_EQ(verify_audit_chain({path}), "");
}

TEST(Audit, ABrokenChainIsFoundWhereItBreaks) {
  const std::string dir = testing::temp_dir("audit_tamper");
  const std::string path = dir + "/audit.jsonl";
  {
    AuditTrail a({path});
    for (int i = 0; i < 4; ++i) a.append({{"event", "received"}, {"i", i}});
  }
  std::vector<std::string> lines = lines_of(path);
  auto write = [&](const std::vector<std::string>& ls) {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& l : ls) out << l << "\n";
  };
  std::vector<std::string> changed = lines;
  changed[1].replace(changed[1].find("\"i\":1"), 5, "\"i\":7");
  write(changed);
  EXPECT_NE(verify_audit_chain({path}).find("audit.jsonl:3: prev"), std::string::npos)
      << verify_audit_chain({path});
  std::vector<std::string> removed = lines;
  removed.erase(removed.begin() + 2);
  write(removed);
  EXPECT_NE(verify_audit_chain({path}).find("audit.jsonl:3: prev"), std::string::npos);
  // A line cut short by a crash stays visible, and the next record starts on a line of its own.
  write(lines);
  { std::ofstream(path, std::ios::app) << "{\"time\":\"2026-"; }
  {
    AuditTrail a({path});
    EXPECT_TRUE(a.append({{"event", "after the crash"}}));
  }
  lines = lines_of(path);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(json::parse(lines[5])["event"], "after the crash");
  EXPECT_NE(verify_audit_chain({path}).find("audit.jsonl:5: not a JSON record"), std::string::npos);
}

TEST(Audit, RotatesBySizeKeepingTheNewestFilesAndOneChain) {
  const std::string path = testing::temp_dir("audit_rotate") + "/audit.jsonl";
  {
    AuditTrail a({path, 400, 2});
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(a.append({{"event", "received"}, {"i", i}}));
  }
  for (const std::string& f : {path, path + ".1", path + ".2"}) {
    ASSERT_TRUE(std::filesystem::exists(f)) << f;
    EXPECT_LE(std::filesystem::file_size(f), 400u) << f;
    EXPECT_FALSE(lines_of(f).empty()) << f;
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  EXPECT_EQ(verify_audit_chain({path + ".2", path + ".1", path}), "");
  EXPECT_EQ(json::parse(lines_of(path).back())["i"], 29);
  EXPECT_EQ(json::parse(lines_of(path).back())["seq"], 30);
  // Out of order, the chain breaks.
  EXPECT_NE(verify_audit_chain({path + ".1", path + ".2", path}), "");
}

TEST(Audit, AFullDiskIsReportedNotThrown) {
  AuditTrail a({"/dev/full"});
  EXPECT_FALSE(a.append({{"event", "received"}}));
  EXPECT_FALSE(a.append({{"event", "received"}}));
}

}  // namespace
}  // namespace wristssl::util
