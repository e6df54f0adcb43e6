#include "wristssl/data/boxes.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "wristssl/data/dataset.h"

namespace fs = std::filesystem;

namespace wristssl::data {
namespace {

TEST(Yolo, ReadsCentreSizeIntoCorners) {
  // Two FracAtlas-style lines; the second written with Windows line ends and extra spaces.
  const YoloFile f = parse_yolo("0 0.5 0.25 0.2 0.1\n0  0.1 0.9  0.1 0.2\r\n\n", "a.txt");
  ASSERT_EQ(f.boxes.size(), 2u);
  EXPECT_TRUE(f.problems.empty());
  EXPECT_NEAR(f.boxes[0].x0, 0.4, 1e-12);
  EXPECT_NEAR(f.boxes[0].x1, 0.6, 1e-12);
  EXPECT_NEAR(f.boxes[0].y0, 0.2, 1e-12);
  EXPECT_NEAR(f.boxes[0].y1, 0.3, 1e-12);
  EXPECT_NEAR(f.boxes[1].cx(), 0.1, 1e-12);
  EXPECT_NEAR(f.boxes[1].y1, 1.0, 1e-12);  // 0.9 + 0.1: at the edge
}

TEST(Yolo, ClipsToTheImage) {
  const YoloFile f = parse_yolo("0 0.05 0.5 0.3 0.2\n", "a.txt");
  ASSERT_EQ(f.boxes.size(), 1u);
  EXPECT_EQ(f.boxes[0].x0, 0.0);
  EXPECT_NEAR(f.boxes[0].x1, 0.2, 1e-12);
}

TEST(Yolo, MalformedLinesAreNamedAndSkipped) {
  const std::string text =
      "0 0.5 0.5 0.1 0.1\n"   // 1: fine
      "0 0.5 0.5 0.1\n"       // 2: four numbers
      "0 0.5 abc 0.1 0.1\n"   // 3: not a number
      "0 0.5 0.5 0 0.1\n"     // 4: zero width
      "0 1.5 0.5 0.1 0.1\n"   // 5: centre outside
      "-1 0.5 0.5 0.1 0.1\n"  // 6: no class index
      "1 0.2 0.2 0.1 0.1\n";  // 7: fine
  const YoloFile f = parse_yolo(text, "labels/IMG1.txt");
  EXPECT_EQ(f.boxes.size(), 2u);
  ASSERT_EQ(f.problems.size(), 5u);
  EXPECT_EQ(f.problems[0].rfind("labels/IMG1.txt:2: expected 'class cx cy w h'", 0), 0u)
      << f.problems[0];
  EXPECT_EQ(f.problems[1].rfind("labels/IMG1.txt:3:", 0), 0u);
  EXPECT_NE(f.problems[2].find(":4: box size"), std::string::npos) << f.problems[2];
  EXPECT_NE(f.problems[3].find(":5: box centre"), std::string::npos) << f.problems[3];
  EXPECT_NE(f.problems[4].find(":6: class"), std::string::npos) << f.problems[4];
}

TEST(Yolo, KeepsOnlyTheAskedClass) {
  // GRAZPEDWRI-DX: class 3 is fracture, 8 text.
  const YoloFile f =
      parse_yolo("3 0.5 0.5 0.1 0.1\n8 0.2 0.2 0.1 0.1\n3 0.7 0.7 0.1 0.1\n", "x.txt", 3);
  ASSERT_EQ(f.boxes.size(), 2u);
  EXPECT_NEAR(f.boxes[1].cx(), 0.7, 1e-12);
}

class BoxFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wristssl-boxes-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "labels");
    fs::create_directories(dir_ / "images");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  fs::path dir_;
};

TEST_F(BoxFolder, MatchesByStemAndTellsUnknownFromNone) {
  write(dir_ / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\n");
  write(dir_ / "labels" / "b.txt", "");  // known: no fracture marked
  write(dir_ / "labels" / "c.txt", "0 0.5\n");
  const BoxTable t = read_box_folder((dir_ / "labels").string(),
                                     {"images/a.jpg", "other/b.png", "d.dcm", "c.jpg"});
  EXPECT_EQ(t.files, 3u);
  ASSERT_EQ(t.by_image.count(0), 1u);
  EXPECT_EQ(t.by_image.at(0).size(), 1u);
  ASSERT_EQ(t.by_image.count(1), 1u);
  EXPECT_TRUE(t.by_image.at(1).empty());
  EXPECT_EQ(t.by_image.count(2), 0u);  // no file: unknown
  EXPECT_TRUE(t.by_image.at(3).empty());
  ASSERT_EQ(t.problems.size(), 1u);
  EXPECT_NE(t.problems[0].find("c.txt:1:"), std::string::npos);
  EXPECT_THROW(read_box_folder((dir_ / "nope").string(), {}), std::runtime_error);
}

TEST_F(BoxFolder, DatasetRecordsCarryTheirBoxes) {
  write(dir_ / "labels.csv", "path,label\nimages/a.png,1\nimages/b.png,0\nimages/e.png,1\n");
  for (const char* f : {"a.png", "b.png", "e.png"}) write(dir_ / "images" / f, "x");
  write(dir_ / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n");
  write(dir_ / "labels" / "b.txt", "");
  DatasetOptions o;
  o.data = (dir_ / "labels.csv").string();
  o.boxes = (dir_ / "labels").string();
  const Dataset ds = load_dataset(o);
  ASSERT_EQ(ds.records.size(), 3u);
  EXPECT_TRUE(ds.records[0].boxes_known);
  EXPECT_EQ(ds.records[0].boxes.size(), 2u);
  EXPECT_TRUE(ds.records[1].boxes_known);
  EXPECT_TRUE(ds.records[1].boxes.empty());
  EXPECT_FALSE(ds.records[2].boxes_known);
}

}  // namespace
}  // namespace wristssl::data
