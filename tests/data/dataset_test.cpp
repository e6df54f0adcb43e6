#include "wristssl/data/dataset.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_paths.h"
#include "wristssl/data/scan.h"
#include "wristssl/util/fs.h"

namespace wristssl::data {
namespace {

using testing::repo_path;

TEST(Dataset, GrazpedwriCsvWithBomCrlfAndFlags) {
  DatasetOptions o;
  o.data = repo_path("samples/grazpedwri-dx");
  const Dataset ds = load_dataset(o);
  EXPECT_EQ(ds.layout, Layout::kGrazpedwri);
  // 14 csv rows of 3 patients; only 3 images are bundled. Labels from fracture_visible, checked by
  // hand against samples/grazpedwri-dx/dataset.csv: 2425_..._F005 and 1068_..._F010 are 1, 0004_... empty.
  ASSERT_EQ(ds.records.size(), 3u);
  EXPECT_EQ(ds.dropped.at("image not found"), 11);
  std::map<std::string, int> label;
  for (const auto& r : ds.records) label[std::filesystem::path(r.path).stem().string()] = r.label;
  EXPECT_EQ(label.at("2425_1070629475_01_WRI-L2_F005"), 1);
  EXPECT_EQ(label.at("1068_1253423501_03_WRI-L2_F010"), 1);
  EXPECT_EQ(label.at("0004_0542630449_01_WRI-L1_M003"), 0);
  EXPECT_EQ(ds.group_count(), 3u);
  EXPECT_EQ(ds.records[0].group.rfind("patient:", 0), 0u);
}

TEST(Dataset, GrazpedwriFiltersAndExtraImageFolders) {
  const std::string dir = testing::temp_dir("graz");
  util::atomic_write(dir + "/dataset.csv",
                     "\xEF\xBB\xBF" "filestem,patient_id,cast,metal,diagnosis_uncertain,fracture_visible\r\n"
                     "a,1,1.0,,,1\r\nb,1,,1,,1\r\nc,2,,,1,\r\nd,3,,,,1.0\r\n");
  std::filesystem::create_directories(dir + "/part2");
  for (const char* f : {"a", "b", "c"}) util::atomic_write(dir + "/images/" + f + ".png", "x");
  util::atomic_write(dir + "/part2/d.png", "x");
  DatasetOptions o;
  o.data = dir + "/dataset.csv";
  o.image_dirs = {dir + "/images", dir + "/part2"};
  EXPECT_EQ(load_dataset(o).records.size(), 4u);
  o.exclude_cast = o.exclude_metal = o.exclude_uncertain = true;
  const Dataset ds = load_dataset(o);
  ASSERT_EQ(ds.records.size(), 1u);
  EXPECT_EQ(ds.records[0].label, 1);
  EXPECT_EQ(ds.dropped.at("cast"), 1);
  EXPECT_EQ(ds.dropped.at("metal"), 1);
  EXPECT_EQ(ds.dropped.at("diagnosis_uncertain"), 1);
}

TEST(Dataset, BadFlagIsAnErrorNamingTheLine) {
  const std::string dir = testing::temp_dir("flag");
  util::atomic_write(dir + "/dataset.csv", "filestem,patient_id,fracture_visible\na,1,yes\n");
  util::atomic_write(dir + "/a.png", "x");
  DatasetOptions o;
  o.data = dir;
  try {
    load_dataset(o);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("dataset.csv:2"), std::string::npos) << e.what();
  }
}

TEST(Dataset, FracAtlasClassFoldersAreDetected) {
  DatasetOptions o;
  o.data = repo_path("samples/fracatlas/images");
  const Dataset ds = load_dataset(o);
  EXPECT_EQ(ds.layout, Layout::kFolders);
  ASSERT_EQ(ds.class_names.size(), 2u);
  EXPECT_EQ(ds.class_names[0], "Non_fractured");
  EXPECT_EQ(ds.class_names[1], "Fractured");
  EXPECT_EQ(ds.label_counts().at(1), 64);
  EXPECT_EQ(ds.label_counts().at(0), 66);
}

TEST(Dataset, ManifestWithNamedLabelsGroupsAndFilters) {
  DatasetOptions o;
  o.data = repo_path("samples/fracatlas/labels.csv");
  o.group_column = "dup_cluster";
  o.where = {"jpeg_truncated=0"};
  const Dataset ds = load_dataset(o);
  EXPECT_EQ(ds.layout, Layout::kManifest);
  EXPECT_EQ(ds.class_names[1], "fractured");
  EXPECT_EQ(ds.records.size(), 128u);
  EXPECT_EQ(ds.dropped.at("filter"), 2);
  EXPECT_EQ(ds.records[0].group.rfind("dup_cluster:", 0), 0u);
  EXPECT_TRUE(std::filesystem::exists(ds.records[0].path)) << "paths resolve against the csv's folder";
  o.where = {"no_such_column=1"};
  EXPECT_THROW(load_dataset(o), std::runtime_error);
}

TEST(Dataset, UnlabelledTreeAndNumericManifest) {
  const std::string dir = testing::temp_dir("tree");
  for (const char* f : {"x/a.png", "x/y/b.dcm", "c", "notes.txt", ".hidden/d.png"}) {
    util::atomic_write(dir + "/" + f, "x");
  }
  DatasetOptions o;
  o.data = dir;
  const Dataset ds = load_dataset(o);
  EXPECT_EQ(ds.layout, Layout::kUnlabelled);
  EXPECT_EQ(ds.records.size(), 3u) << "png, dcm and extension-less files; not txt or hidden folders";
  EXPECT_FALSE(ds.labelled());
  util::atomic_write(dir + "/m.csv", "path,label,group\nx/a.png,1,p1\nc,0,p1\n");
  o.data = dir + "/m.csv";
  const Dataset m = load_dataset(o);
  EXPECT_EQ(m.records[0].label, 1);
  EXPECT_EQ(m.group_count(), 1u);
}

// A folder with every kind of entry that used to stop the listing: each bad one is listed once, the
// rest of the folder still is, and scan reads the good images and names the reason for each bad
// one.
class AwkwardFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    dir_ = testing::temp_dir("awkward");
    outside_ = testing::temp_dir("awkward_outside");
    const std::string png = util::read_text(repo_path("tests/fixtures/grey8.png"));
    for (const char* f : {"a.png", "b/c.png", "folder.png/inner.png", "locked.png"}) {
      util::atomic_write(dir_ + "/" + f, png);
    }
    util::atomic_write(outside_ + "/d.png", png);
    fs::create_symlink("loop.png", dir_ + "/loop.png");  // a link to itself
    fs::create_symlink("ping.dcm", dir_ + "/pong.dcm");  // two links to each other
    fs::create_symlink("pong.dcm", dir_ + "/ping.dcm");
    fs::create_symlink("missing.png", dir_ + "/gone.png");        // dangling
    fs::create_symlink("notes.txt", dir_ + "/notes.txt");         // a loop, but not an image name
    fs::create_directory_symlink("..", dir_ + "/b/up");           // back to the root: a loop
    fs::create_directory_symlink(".", dir_ + "/b/self");          // to itself: a loop
    fs::create_directory_symlink("../..", dir_ + "/b/above");     // above the root: a loop too
    fs::create_directory_symlink(outside_, dir_ + "/linked");     // a real folder elsewhere
    fs::create_directory_symlink(dir_ + "/b", dir_ + "/also_b");  // a second way into b
    fs::permissions(dir_ + "/locked.png", fs::perms::none);
  }
  void TearDown() override {
    std::filesystem::permissions(dir_ + "/locked.png", std::filesystem::perms::owner_all);
  }
  std::string dir_, outside_;
};

TEST_F(AwkwardFolder, EachBadEntryIsListedOnceAndTheListingGoesOn) {
  const std::vector<std::string> want = {dir_ + "/a.png",      dir_ + "/b/c.png",
                                         dir_ + "/folder.png", dir_ + "/folder.png/inner.png",
                                         dir_ + "/gone.png",   dir_ + "/linked/d.png",
                                         dir_ + "/locked.png", dir_ + "/loop.png",
                                         dir_ + "/ping.dcm",   dir_ + "/pong.dcm"};
  EXPECT_EQ(list_image_files(dir_), want)
      << "b/ reached through also_b, b/up, b/self or b/above is not "
         "listed again; b/ is listed under its own name";
}

TEST_F(AwkwardFolder, ScanCountsTheGoodImagesAndGivesEachReason) {
  DatasetOptions o;
  o.data = dir_;
  const Dataset ds = load_dataset(o);
  ASSERT_EQ(ds.layout, Layout::kUnlabelled);
  ASSERT_EQ(ds.records.size(), 10u);
  const ScanResult r = scan_dataset(ds, 2);
  std::map<std::string, std::string> why;
  for (const auto& [path, reason] : r.unreadable)
    why[std::filesystem::path(path).filename().string()] = reason;
  EXPECT_EQ(why.at("loop.png"), "io: too many levels of symbolic links (a link loop)");
  EXPECT_EQ(why.at("ping.dcm"), "io: too many levels of symbolic links (a link loop)");
  EXPECT_EQ(why.at("pong.dcm"), "io: too many levels of symbolic links (a link loop)");
  EXPECT_EQ(why.at("gone.png"),
            "io: dangling symbolic link (points to missing.png, which does not exist)");
  EXPECT_EQ(why.at("folder.png"), "io: is a folder, not a file");
  const bool root = ::geteuid() == 0;  // root reads a file whatever its permissions
  if (!root) {
    EXPECT_EQ(why.at("locked.png"), "io: permission denied");
  }
  const int good = root ? 5 : 4;  // a, c, inner, d (and locked, as root)
  EXPECT_EQ(r.readable_per_label.at(-1), good);
  EXPECT_EQ(r.formats.at("png"), good);
  EXPECT_EQ(r.unreadable.size(), 10u - static_cast<size_t>(good));
  const std::string text = format_scan_report(r);
  EXPECT_NE(text.find("loop.png: io: too many levels of symbolic links"), std::string::npos)
      << text;
}

TEST_F(AwkwardFolder, ClassFolderDetectionIgnoresLinkLoops) {
  namespace fs = std::filesystem;
  const std::string png = util::read_text(repo_path("tests/fixtures/grey8.png"));
  util::atomic_write(dir_ + "/classes/fractured/f.png", png);
  util::atomic_write(dir_ + "/classes/not_fractured/n.png", png);
  fs::create_symlink("zz", dir_ + "/classes/zz");  // a loop beside the class folders
  fs::create_symlink("x.png", dir_ + "/classes/fractured/x.png");
  DatasetOptions o;
  o.data = dir_ + "/classes";
  const Dataset ds = load_dataset(o);
  EXPECT_EQ(ds.layout, Layout::kFolders);
  EXPECT_EQ(ds.records.size(), 3u);
}

TEST(Dataset, ListingARootThatIsNotAFolderThrows) {
  const std::string dir = testing::temp_dir("notfolder");
  util::atomic_write(dir + "/f.png", "x");
  EXPECT_THROW(list_image_files(dir + "/f.png"), std::runtime_error);
  EXPECT_THROW(list_image_files(dir + "/nope"), std::runtime_error);
  std::filesystem::create_symlink("loop", dir + "/loop");
  EXPECT_THROW(list_image_files(dir + "/loop"), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::data
