#include "wristssl/util/csv.h"

#include <gtest/gtest.h>

namespace wristssl::util {
namespace {

TEST(Csv, BomCrlfQuotesAndEmptyFields) {
  const std::string text = "\xEF\xBB\xBF" "filestem,patient_id,fracture_visible\r\n"
                           "a,1,1.0\r\n"
                           "\"b,with comma\",2,\r\n"
                           "\"c \"\"quoted\"\"\",3,1\r\n";
  const CsvTable t = parse_csv(text, "x.csv");
  ASSERT_EQ(t.header.size(), 3u);
  EXPECT_EQ(t.header[0], "filestem") << "BOM must be stripped";
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0][2], "1.0");
  EXPECT_EQ(t.rows[1][0], "b,with comma");
  EXPECT_EQ(t.rows[1][2], "");
  EXPECT_EQ(t.rows[2][0], "c \"quoted\"");
  EXPECT_EQ(t.column("patient_id"), 1);
  EXPECT_EQ(t.column("nope"), -1);
}

TEST(Csv, ShortRowsArePaddedLongRowsAreErrors) {
  const CsvTable t = parse_csv("a,b,c\n1\n", "x.csv");
  EXPECT_EQ(t.rows[0].size(), 3u);
  try {
    parse_csv("a,b\n1,2,3\n", "bad.csv");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_csv("a\n\"open\n", "q.csv"), std::runtime_error);
  EXPECT_THROW(parse_csv("", "empty.csv"), std::runtime_error);
}

TEST(Csv, FieldQuotingRoundTrips) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(parse_csv("h\n" + csv_field("x \"y\", z") + "\n", "r").rows[0][0], "x \"y\", z");
}

}  // namespace
}  // namespace wristssl::util
