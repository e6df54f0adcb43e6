#include "wristssl/io/read_image.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "test_paths.h"
#include "wristssl/util/fs.h"

namespace wristssl::io {
namespace {

using testing::repo_path;

std::vector<uint8_t> bytes_of(const std::string& rel) {
  const std::string s = util::read_text(repo_path(rel));
  return {s.begin(), s.end()};
}

ErrorKind kind_of(const std::vector<uint8_t>& b, const std::string& name = "mem") {
  try {
    decode_image(b.data(), b.size(), name);
  } catch (const ImageError& e) {
    EXPECT_EQ(e.path(), name);
    return e.kind();
  }
  ADD_FAILURE() << name << ": decoded without error";
  return ErrorKind::kIo;
}

TEST(SniffFormat, UsesContentNotExtension) {
  auto png = bytes_of("tests/fixtures/grey8.png");
  auto jpg = bytes_of("tests/fixtures/grey.jpg");
  auto dcm = bytes_of("samples/dicom/pydicom_chrJapMulti_CR32x32.dcm");
  auto bare = bytes_of("samples/dicom/CR-MONO1-10-chest.dcm");
  EXPECT_EQ(sniff_format(png.data(), png.size()), Format::kPng);
  EXPECT_EQ(sniff_format(jpg.data(), jpg.size()), Format::kJpeg);
  EXPECT_EQ(sniff_format(dcm.data(), dcm.size()), Format::kDicom);
  EXPECT_EQ(sniff_format(bare.data(), bare.size()), Format::kDicom) << "no preamble, implicit VR";
  const std::string text = "path,label\na.png,1\n";
  EXPECT_EQ(sniff_format(reinterpret_cast<const uint8_t*>(text.data()), text.size()), Format::kUnknown);
}

TEST(ReadImage, MisnamedFileIsDecodedByContent) {
  const std::string dir = testing::temp_dir("misnamed");
  const std::string s = util::read_text(repo_path("tests/fixtures/grey8.png"));
  util::atomic_write(dir + "/actually_png.jpg", s);
  EXPECT_EQ(read_image(dir + "/actually_png.jpg").info.format, "png");
}

TEST(ReadImage, MissingEmptyAndNonImageFilesAreTypedErrors) {
  const std::string dir = testing::temp_dir("bad");
  try {
    read_image(dir + "/nope.png");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("nope.png"), std::string::npos);
  }
  util::atomic_write(dir + "/empty.png", "");
  try {
    read_image(dir + "/empty.png");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kEmpty);
  }
  const std::string text = "this is a csv, not an image\n";
  EXPECT_EQ(kind_of({text.begin(), text.end()}), ErrorKind::kNotAnImage);
  try {
    read_image(dir);  // a folder
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
}

// The reason read_file_bytes gives for an entry that is not a readable file.
std::string io_reason(const std::string& path) {
  try {
    read_file_bytes(path);
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo) << path << ": " << e.reason();
    EXPECT_EQ(e.path(), path);
    return e.reason();
  }
  ADD_FAILURE() << path << ": read without error";
  return "";
}

TEST(ReadImage, EachUnreadableEntryHasItsOwnReason) {
  namespace fs = std::filesystem;
  const std::string dir = testing::temp_dir("reasons");
  const std::string png = util::read_text(repo_path("tests/fixtures/grey8.png"));
  util::atomic_write(dir + "/ok.png", png);
  util::atomic_write(dir + "/locked.png", png);
  fs::create_directories(dir + "/folder.png");
  fs::create_symlink("loop.png", dir + "/loop.png");
  fs::create_symlink("b.png", dir + "/a.png");
  fs::create_symlink("a.png", dir + "/b.png");
  fs::create_symlink("missing.png", dir + "/gone.png");
  fs::create_symlink("ok.png", dir + "/good_link.png");

  EXPECT_EQ(io_reason(dir + "/folder.png"), "is a folder, not a file");
  EXPECT_EQ(io_reason(dir + "/loop.png"), "too many levels of symbolic links (a link loop)");
  EXPECT_EQ(io_reason(dir + "/a.png"), "too many levels of symbolic links (a link loop)");
  EXPECT_EQ(io_reason(dir + "/gone.png"),
            "dangling symbolic link (points to missing.png, which does not exist)");
  EXPECT_EQ(io_reason(dir + "/nope.png"), "no such file");
  EXPECT_EQ(read_image(dir + "/good_link.png").info.format, "png")
      << "a link to a file is read through";

  fs::permissions(dir + "/locked.png", fs::perms::none);
  if (::geteuid() != 0) {
    EXPECT_EQ(io_reason(dir + "/locked.png"), "permission denied");
  } else {
    // Root reads a file whatever its permissions; the one assertion that needs them is not run.
    EXPECT_EQ(read_image(dir + "/locked.png").info.format, "png");
  }
  fs::permissions(dir + "/locked.png", fs::perms::owner_all);
}

TEST(ReadImage, TruncatedPngAtEveryTenthOfItsLengthIsAnError) {
  const auto full = bytes_of("samples/grazpedwri-dx/images/2425_1070629475_01_WRI-L2_F005.png");
  for (int tenth = 1; tenth < 10; ++tenth) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + full.size() * tenth / 10);
    const ErrorKind k = kind_of(cut);
    EXPECT_TRUE(k == ErrorKind::kTruncated || k == ErrorKind::kCorrupt) << tenth << ": " << error_kind_name(k);
  }
  std::vector<uint8_t> header_only(full.begin(), full.begin() + 20);
  EXPECT_EQ(kind_of(header_only), ErrorKind::kTruncated);
}

TEST(ReadImage, TruncatedJpegIsAnErrorNotGreyRows) {
  const auto full = bytes_of("samples/fracatlas/images/Fractured/IMG0000319.jpg");
  for (int tenth = 2; tenth < 10; tenth += 2) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + full.size() * tenth / 10);
    EXPECT_EQ(kind_of(cut), ErrorKind::kTruncated) << tenth;
  }
}

TEST(ReadImage, AbsurdPngDimensionsAreRefusedBeforeAllocating) {
  auto b = bytes_of("tests/fixtures/grey8.png");
  // IHDR width at offset 16 (big-endian); set 1,000,000 x 48, and fix the chunk CRC so libpng gets
  // as far as the limit check.
  b[16] = 0x00; b[17] = 0x0F; b[18] = 0x42; b[19] = 0x40;
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= b[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  b[29] = crc >> 24; b[30] = (crc >> 16) & 0xFF; b[31] = (crc >> 8) & 0xFF; b[32] = crc & 0xFF;
  EXPECT_EQ(kind_of(b), ErrorKind::kTooLarge);
}

TEST(ReadImage, CorruptPngChunkCrcIsCorrupt) {
  auto b = bytes_of("tests/fixtures/grey8.png");
  b[20] ^= 0xFF;  // height byte without fixing the CRC
  EXPECT_EQ(kind_of(b), ErrorKind::kCorrupt);
}

TEST(ReadImage, AbsurdJpegDimensionsAreRefused) {
  auto b = bytes_of("tests/fixtures/grey.jpg");
  // Find SOF0 (FFC0) and set height and width to 65000.
  for (size_t i = 0; i + 9 < b.size(); ++i) {
    if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) {
      b[i + 5] = 0xFD; b[i + 6] = 0xE8; b[i + 7] = 0xFD; b[i + 8] = 0xE8;
      break;
    }
  }
  EXPECT_EQ(kind_of(b), ErrorKind::kTooLarge);
}

TEST(ReadImage, RandomGarbageBehindValidSignaturesNeverCrashes) {
  std::mt19937 rng(7);
  for (const char* rel : {"tests/fixtures/grey8.png", "tests/fixtures/grey.jpg", "tests/fixtures/progressive.jpg"}) {
    const auto good = bytes_of(rel);
    for (int trial = 0; trial < 200; ++trial) {
      auto b = good;
      const int flips = 1 + rng() % 8;
      for (int k = 0; k < flips; ++k) b[8 + rng() % (b.size() - 8)] = static_cast<uint8_t>(rng());
      try {
        const Image img = decode_image(b.data(), b.size(), rel);
        EXPECT_EQ(img.pixels.size(), static_cast<size_t>(img.info.width) * img.info.height);
      } catch (const ImageError&) {
      }
    }
  }
}

}  // namespace
}  // namespace wristssl::io
