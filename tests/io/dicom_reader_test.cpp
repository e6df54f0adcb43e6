// decode_dicom: the five real files in samples/dicom against numbers computed independently with pydicom,
// synthetic files built here for the transfer syntaxes and attributes the samples lack, and hostile input
// (cut, mutated, garbage, absurd lengths, deep nesting) that must end in a typed ImageError, quickly and
// without a large allocation.
//
// Reference numbers: /usr/bin/python3 scripts/check_dicom_decoder.py --reference-only samples/dicom
// (pydicom 2.3.1 + GDCM 3.0.21: frame 0 -> apply_modality_lut -> first window centre/width with the PS3.3
// C.11.2.1.2.1 linear function, else min-max of the modality-transformed values -> [0, 1] -> MONOCHROME1
// inverted). Pixels are given as (row, col).

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "wristssl/io/read_image.h"
#include "wristssl/util/json_text.h"

namespace wristssl::io {
namespace {

using testing::repo_path;
using Bytes = std::vector<uint8_t>;

Bytes sample(const std::string& file) {
  const std::string path = repo_path("samples/dicom/" + file);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Image decode(const Bytes& b, const ReadLimits& limits = {}) {
  return decode_dicom(b.data(), b.size(), "test.dcm", limits);
}

double mean_of(const Image& img) {
  double s = 0;
  for (float v : img.pixels) s += v;
  return img.pixels.empty() ? 0.0 : s / static_cast<double>(img.pixels.size());
}

float at(const Image& img, int row, int col) {
  return img.pixels[static_cast<size_t>(row) * static_cast<size_t>(img.info.width) + static_cast<size_t>(col)];
}

// Growth of the peak resident set while fn runs, in MiB; nullopt where the kernel cannot reset the peak.
std::optional<double> peak_rss_growth_mib(const std::function<void()>& fn) {
  auto status_kib = [](const char* key) -> long {
    std::ifstream s("/proc/self/status");
    std::string line;
    while (std::getline(s, line)) {
      if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
    }
    return -1;
  };
  {
    std::ofstream clear("/proc/self/clear_refs");
    if (!clear) return std::nullopt;
    clear << "5";  // resets VmHWM to the current RSS
    clear.close();
    if (!clear) return std::nullopt;
  }
  const long base = status_kib("VmRSS:");
  fn();
  const long peak = status_kib("VmHWM:");
  if (base < 0 || peak < 0) return std::nullopt;
  return static_cast<double>(peak - base) / 1024.0;
}

// Decodes hostile bytes: must throw ImageError of `kind`, in under a second, growing RSS by under 100 MiB.
void expect_rejected(const Bytes& b, ErrorKind kind, const std::string& what) {
  SCOPED_TRACE(what);
  std::optional<ErrorKind> got;
  std::string reason;
  const auto t0 = std::chrono::steady_clock::now();
  const auto growth = peak_rss_growth_mib([&] {
    try {
      decode(b);
    } catch (const ImageError& e) {
      got = e.kind();
      reason = e.reason();
      EXPECT_EQ(e.path(), "test.dcm");
    }
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(got.has_value()) << "decoded without error";
  EXPECT_EQ(error_kind_name(*got), std::string(error_kind_name(kind))) << reason;
  EXPECT_LT(secs, 1.0);
  if (growth) {
    EXPECT_LT(*growth, 100.0);
  }
}

// ---- little helpers to patch and build DICOM bytes

void put_le16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v & 0xFF);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}
void put_le32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

// Offset of the first little endian tag (group, element) at or after `from`.
size_t find_tag(const Bytes& b, uint16_t group, uint16_t element, size_t from = 0) {
  const uint8_t pat[4] = {static_cast<uint8_t>(group & 0xFF), static_cast<uint8_t>(group >> 8),
                          static_cast<uint8_t>(element & 0xFF), static_cast<uint8_t>(element >> 8)};
  auto it = std::search(b.begin() + static_cast<std::ptrdiff_t>(from), b.end(), pat, pat + 4);
  EXPECT_NE(it, b.end()) << std::hex << group << "," << element;
  return static_cast<size_t>(it - b.begin());
}

constexpr const char* kExplicitLE = "1.2.840.10008.1.2.1";
constexpr const char* kExplicitBE = "1.2.840.10008.1.2.2";
constexpr const char* kRle = "1.2.840.10008.1.2.5";
constexpr const char* kJpegLossless = "1.2.840.10008.1.2.4.70";
constexpr const char* kJ2k = "1.2.840.10008.1.2.4.90";

// Writes a DICOM file: preamble, meta header (explicit VR little endian), then the data set in the
// transfer syntax's encoding (explicit VR, little or big endian). Elements must be added in tag order.
class DicomBuilder {
 public:
  explicit DicomBuilder(std::string ts) : ts_(std::move(ts)), big_(ts_ == kExplicitBE) {}

  DicomBuilder& us(uint16_t g, uint16_t e, uint16_t v) {
    header(g, e, "US", 2);
    word(v, 2);
    return *this;
  }
  DicomBuilder& str(uint16_t g, uint16_t e, const char* vr, std::string v) {
    if (v.size() % 2) v += (std::strcmp(vr, "UI") == 0 ? '\0' : ' ');
    header(g, e, vr, static_cast<uint32_t>(v.size()));
    data_.insert(data_.end(), v.begin(), v.end());
    return *this;
  }
  // Native pixel data from sample values (bits_allocated 8 or 16), optionally with a false length field.
  DicomBuilder& pixels(const std::vector<int32_t>& values, int bits_allocated,
                       std::optional<uint32_t> length = std::nullopt) {
    const uint32_t n = static_cast<uint32_t>(values.size() * static_cast<size_t>(bits_allocated / 8));
    header(0x7FE0, 0x0010, bits_allocated == 8 ? "OB" : "OW", length.value_or(n + (n % 2)));
    for (int32_t v : values) {
      if (bits_allocated == 8) {
        data_.push_back(static_cast<uint8_t>(v));
      } else {
        word(static_cast<uint16_t>(v), 2);
      }
    }
    if (n % 2) data_.push_back(0);
    return *this;
  }
  // Encapsulated pixel data: an empty or given Basic Offset Table, then the fragments.
  DicomBuilder& fragments(const std::vector<Bytes>& frags, const std::vector<uint32_t>& bot = {}) {
    header(0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    item_header(0xE000, static_cast<uint32_t>(bot.size() * 4));
    for (uint32_t o : bot) word(o, 4);
    for (Bytes f : frags) {
      if (f.size() % 2) f.push_back(0);
      item_header(0xE000, static_cast<uint32_t>(f.size()));
      data_.insert(data_.end(), f.begin(), f.end());
    }
    item_header(0xE0DD, 0);
    return *this;
  }
  // `depth` sequences nested in each other, each with one item, all of undefined length.
  DicomBuilder& nested_sequences(int depth) {
    for (int i = 0; i < depth; ++i) {
      header(0x0008, 0x1115, "SQ", 0xFFFFFFFF);
      item_header(0xE000, 0xFFFFFFFF);
    }
    for (int i = 0; i < depth; ++i) {
      item_header(0xE00D, 0);
      item_header(0xE0DD, 0);
    }
    return *this;
  }
  DicomBuilder& sequence_with_item(uint16_t g, uint16_t e, const std::function<void(DicomBuilder&)>& body) {
    header(g, e, "SQ", 0xFFFFFFFF);
    item_header(0xE000, 0xFFFFFFFF);
    body(*this);
    item_header(0xE00D, 0);
    item_header(0xE0DD, 0);
    return *this;
  }
  DicomBuilder& us_array(uint16_t g, uint16_t e, const char* vr, const std::vector<uint16_t>& v) {
    header(g, e, vr, static_cast<uint32_t>(v.size() * 2));
    for (uint16_t x : v) word(x, 2);
    return *this;
  }

  Bytes build() const {
    Bytes meta;
    auto meta_elem = [&meta](uint16_t e, const char* vr, const Bytes& value) {
      const uint8_t h[6] = {0x02, 0x00, static_cast<uint8_t>(e & 0xFF), static_cast<uint8_t>(e >> 8),
                            static_cast<uint8_t>(vr[0]), static_cast<uint8_t>(vr[1])};
      meta.insert(meta.end(), h, h + 6);
      if (std::strcmp(vr, "OB") == 0) {
        meta.insert(meta.end(), {0, 0});
        for (int i = 0; i < 4; ++i) meta.push_back(static_cast<uint8_t>(value.size() >> (8 * i)));
      } else {
        meta.push_back(static_cast<uint8_t>(value.size() & 0xFF));
        meta.push_back(static_cast<uint8_t>(value.size() >> 8));
      }
      meta.insert(meta.end(), value.begin(), value.end());
    };
    auto uid = [](std::string s) {
      if (s.size() % 2) s.push_back('\0');
      return Bytes(s.begin(), s.end());
    };
    meta_elem(0x0001, "OB", {0x00, 0x01});
    meta_elem(0x0002, "UI", uid("1.2.840.10008.5.1.4.1.1.7"));
    meta_elem(0x0003, "UI", uid("1.2.3.4.5.6.7.8.9"));
    meta_elem(0x0010, "UI", uid(ts_));
    Bytes out(128, 0);
    out.insert(out.end(), {'D', 'I', 'C', 'M', 0x02, 0x00, 0x00, 0x00, 'U', 'L', 0x04, 0x00});
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(meta.size() >> (8 * i)));
    out.insert(out.end(), meta.begin(), meta.end());
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

 private:
  void word(uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      const int shift = big_ ? 8 * (bytes - 1 - i) : 8 * i;
      data_.push_back(static_cast<uint8_t>(v >> shift));
    }
  }
  void header(uint16_t g, uint16_t e, const char* vr, uint32_t length) {
    word(g, 2);
    word(e, 2);
    data_.push_back(static_cast<uint8_t>(vr[0]));
    data_.push_back(static_cast<uint8_t>(vr[1]));
    static const char* kLong[] = {"OB", "OW", "SQ", "UN", "UT", "OF"};
    if (std::any_of(std::begin(kLong), std::end(kLong), [&](const char* l) { return std::strcmp(l, vr) == 0; })) {
      word(0, 2);
      word(length, 4);
    } else {
      word(length, 2);
    }
  }
  void item_header(uint16_t e, uint32_t length) {
    word(0xFFFE, 2);
    word(e, 2);
    word(length, 4);
  }

  std::string ts_;
  bool big_;
  Bytes data_;
};

// A grey image description for DicomBuilder.
struct Synthetic {
  int rows = 12;
  int cols = 20;
  int frames = 1;
  int bits_allocated = 16;
  int bits_stored = 12;
  int high_bit = -1;  // bits_stored - 1
  int pixel_rep = 0;
  int samples = 1;
  std::string photometric = "MONOCHROME2";
  std::optional<std::pair<double, double>> window;   // centre, width
  std::optional<std::pair<double, double>> rescale;  // slope, intercept
  std::vector<int32_t> values;                       // frames * rows * cols * samples stored values
};

// Value ramp over the stored range, with a few extremes, so min-max and windows are exercised.
std::vector<int32_t> ramp(const Synthetic& s) {
  std::vector<int32_t> v(static_cast<size_t>(s.frames * s.rows * s.cols * s.samples));
  const int64_t lo = s.pixel_rep ? -(int64_t{1} << (s.bits_stored - 1)) : 0;
  const int64_t hi = s.pixel_rep ? (int64_t{1} << (s.bits_stored - 1)) - 1 : (int64_t{1} << s.bits_stored) - 1;
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(lo + static_cast<int64_t>(i * 37) % (hi - lo + 1));
  return v;
}

DicomBuilder attributes(const Synthetic& s, const std::string& ts) {
  DicomBuilder b(ts);
  b.us(0x0028, 0x0002, static_cast<uint16_t>(s.samples)).str(0x0028, 0x0004, "CS", s.photometric);
  if (s.frames > 1) b.str(0x0028, 0x0008, "IS", std::to_string(s.frames));
  b.us(0x0028, 0x0010, static_cast<uint16_t>(s.rows))
      .us(0x0028, 0x0011, static_cast<uint16_t>(s.cols))
      .us(0x0028, 0x0100, static_cast<uint16_t>(s.bits_allocated))
      .us(0x0028, 0x0101, static_cast<uint16_t>(s.bits_stored))
      .us(0x0028, 0x0102, static_cast<uint16_t>(s.high_bit >= 0 ? s.high_bit : s.bits_stored - 1))
      .us(0x0028, 0x0103, static_cast<uint16_t>(s.pixel_rep));
  if (s.window) {
    b.str(0x0028, 0x1050, "DS", std::to_string(s.window->first))
        .str(0x0028, 0x1051, "DS", std::to_string(s.window->second));
  }
  if (s.rescale) {
    b.str(0x0028, 0x1052, "DS", std::to_string(s.rescale->second))
        .str(0x0028, 0x1053, "DS", std::to_string(s.rescale->first));
  }
  return b;
}

Bytes native_file(const Synthetic& s, const std::string& ts = kExplicitLE) {
  return attributes(s, ts).pixels(s.values, s.bits_allocated).build();
}

// DICOM RLE (PS3.5 annex G) of one frame: one PackBits segment per byte plane, most significant first,
// literal runs only.
Bytes rle_frame(const std::vector<int32_t>& values, int bytes_per_sample) {
  std::vector<Bytes> segments(static_cast<size_t>(bytes_per_sample));
  for (int plane = 0; plane < bytes_per_sample; ++plane) {
    const int shift = 8 * (bytes_per_sample - 1 - plane);
    Bytes raw;
    for (int32_t v : values) raw.push_back(static_cast<uint8_t>(static_cast<uint32_t>(v) >> shift));
    Bytes& seg = segments[static_cast<size_t>(plane)];
    for (size_t i = 0; i < raw.size(); i += 128) {
      const size_t n = std::min<size_t>(128, raw.size() - i);
      seg.push_back(static_cast<uint8_t>(n - 1));
      seg.insert(seg.end(), raw.begin() + static_cast<std::ptrdiff_t>(i),
                 raw.begin() + static_cast<std::ptrdiff_t>(i + n));
    }
    if (seg.size() % 2) seg.push_back(0x80);  // no-op, keeps segments even
  }
  Bytes out(64, 0);
  put_le32(out, 0, static_cast<uint32_t>(bytes_per_sample));
  uint32_t offset = 64;
  for (size_t i = 0; i < segments.size(); ++i) {
    put_le32(out, 4 + 4 * i, offset);
    offset += static_cast<uint32_t>(segments[i].size());
  }
  for (const Bytes& seg : segments) out.insert(out.end(), seg.begin(), seg.end());
  return out;
}

// What dcmimgle should render: the modality-transformed value v through the PS3.3 linear window, or
// min-max, in [0, 1], inverted for MONOCHROME1.
std::vector<double> expected(const Synthetic& s) {
  const size_t n = static_cast<size_t>(s.rows * s.cols);
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = s.values[i];
    if (s.rescale) x[i] = x[i] * s.rescale->first + s.rescale->second;
  }
  std::vector<double> y(n);
  if (s.window) {
    const double c = s.window->first - 0.5, w = s.window->second - 1;
    for (size_t i = 0; i < n; ++i) y[i] = std::clamp((x[i] - c) / w + 0.5, 0.0, 1.0);
  } else {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    for (size_t i = 0; i < n; ++i) y[i] = (x[i] - *lo) / (*hi - *lo);
  }
  if (s.photometric == "MONOCHROME1") {
    for (double& v : y) v = 1.0 - v;
  }
  return y;
}

void expect_pixels(const Image& img, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(img.pixels.size(), want.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(img.pixels[i] - want[i]));
  EXPECT_LT(worst, tol) << what;
}

// ------------------------------------------------------------------------------------------------------------
// Real files vs pydicom

struct Probe {
  int row, col;
  double value;
};

void expect_matches(const Image& img, double mean, const std::vector<Probe>& probes, double tol) {
  EXPECT_NEAR(mean_of(img), mean, 1e-4);
  for (const Probe& p : probes) EXPECT_NEAR(at(img, p.row, p.col), p.value, tol) << p.row << "," << p.col;
  for (float v : img.pixels) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
}

// Tolerances. dcmimgle renders to 16 bits (a step of 1/65535 = 1.5e-5) and pydicom computes in float64, so
// equal formulas agree to ~2e-5 (measured max 1.5e-5 on the three large files). DCMTK's linear window is the
// PS3.3 C.11.2.1.2.1 function pydicom uses; at the edges of the window the two can still fall on different
// sides of a clip by one stored value, so per pixel we allow 1e-4 (well under one stored step of a 10-bit
// window, 1/1023). Where a non-integer rescale slope is involved, dcmimgle rounds the modality-transformed
// value to an integer before the VOI window (pydicom does not): one unit of a 2800-wide window is 3.6e-4,
// hence 5e-4 there (measured max 3.4e-4). JPEG 2000 lossy decoders may differ by one stored value.

TEST(DicomReader, ChestImplicitVrNoPreambleMonochrome1) {
  const Image img = decode(sample("CR-MONO1-10-chest.dcm"));
  EXPECT_EQ(img.info.format, "dicom");
  EXPECT_EQ(img.info.width, 440);
  EXPECT_EQ(img.info.height, 440);
  EXPECT_EQ(img.info.bits_stored, 10);
  EXPECT_EQ(img.info.channels, 1);
  EXPECT_EQ(img.info.photometric, "MONOCHROME1");
  EXPECT_TRUE(img.info.inverted);
  EXPECT_EQ(img.info.transfer_syntax, "1.2.840.10008.1.2");
  EXPECT_EQ(img.info.transfer_syntax_name, "Little Endian Implicit");
  EXPECT_EQ(img.info.frames, 1);
  EXPECT_EQ(img.info.window, "file VOI window c=550,w=1024");
  EXPECT_FALSE(img.info.pixel_spacing_row_mm.has_value());
  expect_matches(img, 0.546570,
                 {{0, 0, 1.0}, {220, 220, 0.758553}, {110, 330, 0.403715}, {330, 110, 0.398827}, {439, 439, 1.0}},
                 1e-4);
}

TEST(DicomReader, JpegLosslessWithModalityLutSequence) {
  const Image img = decode(sample("CR-ModalitySequenceLUT.dcm"));
  EXPECT_EQ(img.info.width, 1976);
  EXPECT_EQ(img.info.height, 1576);
  EXPECT_EQ(img.info.bits_stored, 10);
  EXPECT_EQ(img.info.photometric, "MONOCHROME1");
  EXPECT_TRUE(img.info.inverted);
  EXPECT_EQ(img.info.transfer_syntax, "1.2.840.10008.1.2.4.70");
  EXPECT_EQ(img.info.window.rfind("min-max of stored range", 0), 0u) << img.info.window;
  ASSERT_TRUE(img.info.pixel_spacing_row_mm && img.info.pixel_spacing_col_mm);
  EXPECT_DOUBLE_EQ(*img.info.pixel_spacing_row_mm, 0.15);
  EXPECT_DOUBLE_EQ(*img.info.pixel_spacing_col_mm, 0.15);
  // pydicom: min-max of the Modality LUT output is [0, 1023].
  expect_matches(img, 0.301790,
                 {{0, 0, 0.0}, {788, 988, 0.684262}, {394, 1482, 0.0}, {1182, 494, 0.739003}, {1575, 1975, 0.0}},
                 1e-4);
}

TEST(DicomReader, Jpeg2000LossyThroughOpenJpeg) {
  const Image img = decode(sample("RG3_J2KI.dcm"));
  EXPECT_EQ(img.info.width, 1760);
  EXPECT_EQ(img.info.height, 1760);
  EXPECT_EQ(img.info.bits_stored, 10);
  EXPECT_EQ(img.info.photometric, "MONOCHROME1");
  EXPECT_TRUE(img.info.inverted);
  EXPECT_EQ(img.info.transfer_syntax, "1.2.840.10008.1.2.4.91");
  EXPECT_EQ(img.info.window, "file VOI window c=550,w=1024");
  // One stored step in this 1024-wide window is 1e-3; lossy decoders may round differently by one.
  expect_matches(img, 0.696079,
                 {{0, 0, 1.0}, {880, 880, 0.738025}, {440, 1320, 0.884653}, {1320, 440, 0.739980}, {1759, 1759, 1.0}},
                 2e-3);
}

TEST(DicomReader, TinyExplicitVrWithRescaleAndImagerPixelSpacing) {
  const Image img = decode(sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm"));
  EXPECT_EQ(img.info.width, 16);
  EXPECT_EQ(img.info.height, 16);
  EXPECT_EQ(img.info.bits_stored, 12);
  EXPECT_EQ(img.info.transfer_syntax, "1.2.840.10008.1.2.1");
  EXPECT_EQ(img.info.window, "file VOI window c=1600,w=2800");
  ASSERT_TRUE(img.info.pixel_spacing_row_mm.has_value());
  EXPECT_DOUBLE_EQ(*img.info.pixel_spacing_row_mm, 0.1);  // ImagerPixelSpacing; no PixelSpacing
  // RescaleSlope 0.684: see the tolerance note above.
  EXPECT_NEAR(mean_of(img), 0.383253, 5e-4);
  for (const Probe& p : std::vector<Probe>{
           {0, 0, 0.512720}, {8, 8, 0.385402}, {4, 12, 0.364141}, {12, 4, 0.337260}, {15, 15, 0.409106}})
    EXPECT_NEAR(at(img, p.row, p.col), p.value, 5e-4) << p.row << "," << p.col;
}

TEST(DicomReader, FileWithoutPixelDataIsCorrupt) {
  // A real file (Japanese character sets) that carries image attributes but no Pixel Data.
  expect_rejected(sample("pydicom_chrJapMulti_CR32x32.dcm"), ErrorKind::kCorrupt, "no pixel data");
}

TEST(DicomReader, MetaHeaderWithoutPreamble) {
  const Bytes full = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
  const Bytes bare(full.begin() + 132, full.end());  // drop the preamble and "DICM"
  const Image a = decode(full), b = decode(bare);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(b.info.transfer_syntax, "1.2.840.10008.1.2.1");
}

TEST(DicomReader, ModalityFromTheFile) {
  // Every bundled sample is computed radiography (pydicom: Modality 'CR'); the one without pixel
  // data is rejected before its attributes matter.
  for (const char* file : {"CR-MONO1-10-chest.dcm", "CR-ModalitySequenceLUT.dcm", "RG3_J2KI.dcm",
                           "pydicom_dicomdirtests_CR1_6154_16x16.dcm"}) {
    const Image img = decode(sample(file));
    EXPECT_EQ(img.info.modality, "CR") << file;
    EXPECT_EQ(info_to_json(img.info).value("modality", ""), "CR") << file;
  }
}

// A 16-bit monochrome file of `s` whose Modality (0008,0060), before the image attributes, is
// `modality`.
Bytes file_with_modality(const Synthetic& s, const std::string& modality) {
  DicomBuilder b(kExplicitLE);
  b.str(0x0008, 0x0060, "CS", modality);
  b.us(0x0028, 0x0002, 1).str(0x0028, 0x0004, "CS", s.photometric);
  b.us(0x0028, 0x0010, static_cast<uint16_t>(s.rows))
      .us(0x0028, 0x0011, static_cast<uint16_t>(s.cols))
      .us(0x0028, 0x0100, 16)
      .us(0x0028, 0x0101, static_cast<uint16_t>(s.bits_stored))
      .us(0x0028, 0x0102, static_cast<uint16_t>(s.bits_stored - 1))
      .us(0x0028, 0x0103, 0);
  return b.pixels(s.values, 16).build();
}

TEST(DicomReader, ModalityAbsentOrPadded) {
  Synthetic s;
  s.values = ramp(s);
  const Image none = decode(native_file(s));
  EXPECT_EQ(none.info.modality, "");
  EXPECT_FALSE(info_to_json(none.info).contains("modality"));

  // (0008,0060) comes before the image attributes. A one-letter value is padded to even length with
  // a space by the builder, which the reader trims.
  const Image x = decode(file_with_modality(s, "X"));
  EXPECT_EQ(x.info.modality, "X");
  EXPECT_EQ(info_to_json(x.info).value("modality", ""), "X");
  EXPECT_EQ(x.pixels, none.pixels);

  // PNG and JPEG carry no modality.
  EXPECT_FALSE(info_to_json(ImageInfo{}).contains("modality"));
}

// A Latin-1 byte in an attribute (a Modality of "\xC9X" from a file in ISO_IR 100) cannot stop
// `inspect`: the JSON text carries U+FFFD for it.
TEST(DicomReader, AnAttributeThatIsNotUtf8StillPrintsAsJson) {
  Synthetic s;
  s.values = ramp(s);
  const Image x = decode(file_with_modality(s, "\xC9X"));
  EXPECT_THROW(info_to_json(x.info).dump(), nlohmann::json::type_error);  // what broke inspect
  const std::string text = util::json_text(info_to_json(x.info));
  EXPECT_NE(text.find("\"modality\":\"\xEF\xBF\xBDX\""), std::string::npos) << text;
}

TEST(DicomReader, ConcurrentDecodesAgree) {
  // The data loader decodes on several threads: DCMTK and OpenJPEG state must not be shared between calls.
  const std::vector<std::string> files = {"CR-MONO1-10-chest.dcm", "RG3_J2KI.dcm",
                                          "pydicom_dicomdirtests_CR1_6154_16x16.dcm"};
  std::vector<Bytes> data;
  std::vector<Image> want;
  for (const std::string& f : files) {
    data.push_back(sample(f));
    want.push_back(decode(data.back()));
  }
  std::vector<std::vector<Image>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        for (size_t i = 0; i < data.size(); ++i) got[t].push_back(decode(data[(i + t) % data.size()]));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t) {
    for (size_t k = 0; k < got[t].size(); ++k) {
      EXPECT_EQ(got[t][k].pixels, want[(k % data.size() + t) % data.size()].pixels) << t << "/" << k;
    }
  }
}

// ------------------------------------------------------------------------------------------------------------
// Synthetic files: encodings and attributes the samples lack, against the analytic rendering.

TEST(DicomReader, SyntheticEightBitMinMax) {
  Synthetic s;
  s.bits_allocated = 8;
  s.bits_stored = 8;
  s.values = ramp(s);
  const Image img = decode(native_file(s));
  EXPECT_EQ(img.info.bits_stored, 8);
  EXPECT_FALSE(img.info.inverted);
  EXPECT_EQ(img.info.window.rfind("min-max", 0), 0u);
  expect_pixels(img, expected(s), 1e-4, "8-bit");
}

TEST(DicomReader, SyntheticSignedWithRescaleAndWindow) {
  Synthetic s;
  s.pixel_rep = 1;
  s.bits_stored = 12;
  s.rescale = {{2.0, -1000.0}};
  s.window = {{-1200.0, 3000.0}};
  s.values = ramp(s);
  const Image img = decode(native_file(s));
  expect_pixels(img, expected(s), 1e-4, "signed");
}

TEST(DicomReader, SyntheticBigEndianEqualsLittleEndian) {
  Synthetic s;
  s.bits_stored = 16;
  s.window = {{30000.0, 50000.0}};
  s.values = ramp(s);
  const Image le = decode(native_file(s, kExplicitLE));
  const Image be = decode(native_file(s, kExplicitBE));
  EXPECT_EQ(be.info.transfer_syntax, kExplicitBE);
  EXPECT_EQ(le.pixels, be.pixels);
  expect_pixels(be, expected(s), 1e-4, "big endian");
}

TEST(DicomReader, SyntheticMonochrome1IsInverted) {
  Synthetic s;
  s.photometric = "MONOCHROME1";
  s.values = ramp(s);
  const Image img = decode(native_file(s));
  EXPECT_TRUE(img.info.inverted);
  expect_pixels(img, expected(s), 1e-4, "MONOCHROME1");
}

TEST(DicomReader, PolarityComesFromPhotometricOnlyAndOverlaysAreNotBurnedIn) {
  // dcmimgle on its own would honour a Presentation LUT Shape (flipping MONOCHROME1 + IDENTITY back to dark
  // bone) and paint overlay planes into the output; pydicom's pixel_array does neither, and neither do we.
  for (const char* photometric : {"MONOCHROME1", "MONOCHROME2"}) {
    Synthetic s;
    s.photometric = photometric;
    s.values = ramp(s);
    const bool mono1 = s.photometric == "MONOCHROME1";
    const std::vector<uint16_t> all_set(static_cast<size_t>((s.rows * s.cols + 15) / 16), 0xFFFF);
    const Bytes file = attributes(s, kExplicitLE)
                           .str(0x2050, 0x0020, "CS", mono1 ? "IDENTITY" : "INVERSE")
                           .us(0x6000, 0x0010, static_cast<uint16_t>(s.rows))
                           .us(0x6000, 0x0011, static_cast<uint16_t>(s.cols))
                           .str(0x6000, 0x0040, "CS", "G")
                           .us_array(0x6000, 0x0050, "SS", {1, 1})
                           .us(0x6000, 0x0100, 1)
                           .us(0x6000, 0x0102, 0)
                           .us_array(0x6000, 0x3000, "OW", all_set)
                           .pixels(s.values, 16)
                           .build();
    const Image img = decode(file);
    EXPECT_EQ(img.info.inverted, mono1);
    expect_pixels(img, expected(s), 1e-4, photometric);
  }
}

TEST(DicomReader, SyntheticRle) {
  Synthetic s;
  s.bits_stored = 16;
  s.values = ramp(s);
  const Bytes file = attributes(s, kRle).fragments({rle_frame(s.values, 2)}).build();
  const Image img = decode(file);
  EXPECT_EQ(img.info.transfer_syntax, kRle);
  expect_pixels(img, expected(s), 1e-4, "RLE");
}

TEST(DicomReader, SyntheticMultiFrameDecodesFrameZero) {
  Synthetic s;
  s.frames = 3;
  s.values = ramp(s);
  std::reverse(s.values.begin() + s.rows * s.cols, s.values.end());  // other frames differ
  const Image img = decode(native_file(s));
  EXPECT_EQ(img.info.frames, 3);
  expect_pixels(img, expected(s), 1e-4, "multi-frame native");

  // RLE, one fragment per frame, with a Basic Offset Table.
  std::vector<Bytes> frags;
  std::vector<uint32_t> bot;
  uint32_t offset = 0;
  for (int f = 0; f < s.frames; ++f) {
    const size_t n = static_cast<size_t>(s.rows * s.cols);
    const std::vector<int32_t> frame(s.values.begin() + static_cast<std::ptrdiff_t>(f * n),
                                     s.values.begin() + static_cast<std::ptrdiff_t>((f + 1) * n));
    frags.push_back(rle_frame(frame, 2));
    bot.push_back(offset);
    offset += 8 + static_cast<uint32_t>(frags.back().size() + frags.back().size() % 2);
  }
  const Image rle = decode(attributes(s, kRle).fragments(frags, bot).build());
  EXPECT_EQ(rle.info.frames, 3);
  expect_pixels(rle, expected(s), 1e-4, "multi-frame RLE");
}

TEST(DicomReader, SyntheticVoiLutSequence) {
  Synthetic s;
  s.bits_stored = 10;
  s.values = ramp(s);
  std::vector<uint16_t> lut(1024);
  for (size_t i = 0; i < lut.size(); ++i) lut[i] = static_cast<uint16_t>(std::lround(std::sqrt(i / 1023.0) * 4095));
  DicomBuilder b = attributes(s, kExplicitLE);
  b.sequence_with_item(0x0028, 0x3010, [&](DicomBuilder& item) {
    item.us_array(0x0028, 0x3002, "US", {1024, 0, 12}).us_array(0x0028, 0x3006, "OW", lut);
  });
  const Image img = decode(b.pixels(s.values, 16).build());
  EXPECT_EQ(img.info.window, "VOI LUT");
  std::vector<double> want;
  for (size_t i = 0; i < static_cast<size_t>(s.rows * s.cols); ++i) want.push_back(lut[s.values[i]] / 4095.0);
  expect_pixels(img, want, 1.0 / 4095, "VOI LUT");  // dcmimgle scales the 12-bit LUT output to 16 bits
}

TEST(DicomReader, DeepNestingRunsOnALargeStack) {
  Synthetic s;
  s.values = ramp(s);
  DicomBuilder b(kExplicitLE);
  b.nested_sequences(5000);  // (0008,1115) comes before the (0028,xxxx) attributes
  Bytes file = b.build();
  const Bytes image = native_file(s);
  // Splice: meta + nested sequences + the data set of `image`.
  const Bytes plain = DicomBuilder(kExplicitLE).build();
  file.insert(file.end(), image.begin() + static_cast<std::ptrdiff_t>(plain.size()), image.end());
  const auto t0 = std::chrono::steady_clock::now();
  const Image img = decode(file);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  expect_pixels(img, expected(s), 1e-4, "nested");
}

TEST(DicomReader, SyntheticUnsupported) {
  Synthetic s;
  s.values = ramp(s);
  expect_rejected(native_file(s, "1.2.840.10008.1.2.1.99"), ErrorKind::kUnsupported, "deflated");
  expect_rejected(attributes(s, "1.2.840.10008.1.2.4.100").fragments({Bytes(64, 0)}).build(), ErrorKind::kUnsupported,
                  "MPEG-2");
  expect_rejected(native_file(s, "1.2.3.4.5.6"), ErrorKind::kUnsupported, "unknown UID");
  {
    Synthetic rgb = s;
    rgb.samples = 3;
    rgb.bits_allocated = rgb.bits_stored = 8;
    rgb.photometric = "RGB";
    rgb.values = ramp(rgb);
    expect_rejected(native_file(rgb), ErrorKind::kUnsupported, "RGB");
  }
  {
    Synthetic pal = s;
    pal.photometric = "PALETTE COLOR";
    expect_rejected(native_file(pal), ErrorKind::kUnsupported, "palette");
  }
  {
    Synthetic b32 = s;
    b32.bits_allocated = 32;
    b32.bits_stored = 32;
    expect_rejected(attributes(b32, kExplicitLE).pixels(s.values, 16).build(), ErrorKind::kUnsupported, "32-bit");
  }
  {
    Synthetic bs0 = s;
    bs0.bits_stored = 0;
    bs0.high_bit = 11;
    expect_rejected(native_file(bs0), ErrorKind::kUnsupported, "BitsStored 0");
  }
}

TEST(DicomReader, SyntheticCorrupt) {
  Synthetic s;
  s.values = ramp(s);
  {
    Synthetic hb = s;
    hb.high_bit = 16;
    expect_rejected(native_file(hb), ErrorKind::kCorrupt, "HighBit beyond BitsAllocated");
  }
  {
    Synthetic zero = s;
    zero.cols = 0;
    expect_rejected(native_file(zero), ErrorKind::kCorrupt, "zero columns");
  }
  expect_rejected(attributes(s, kExplicitLE).build(), ErrorKind::kCorrupt, "no pixel data");
  // A JPEG whose frame header disagrees with Rows/Columns (32x16 vs 20x12) is rejected before decoding.
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, 0x10, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
                      0xFF, 0xD9};
  expect_rejected(attributes(s, kJpegLossless).fragments({jpeg}).build(), ErrorKind::kCorrupt, "JPEG size");
  // JPEG 2000: a SIZ that disagrees with the header, one with 240 tiles of 1x1, one with no data after SIZ.
  auto siz = [](uint32_t w, uint32_t h, uint32_t tile) {
    Bytes b = {0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00};
    for (uint32_t v : {w, h, 0u, 0u, tile, tile, 0u, 0u})
      for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    b.insert(b.end(), {0x00, 0x01, 0x0B, 0x01, 0x01});  // one 12-bit component
    b.insert(b.end(), {0xFF, 0xD9});
    return b;
  };
  expect_rejected(attributes(s, kJ2k).fragments({siz(64, 64, 64)}).build(), ErrorKind::kCorrupt, "J2K size");
  expect_rejected(attributes(s, kJ2k).fragments({siz(20, 12, 1)}).build(), ErrorKind::kCorrupt, "J2K tiles");
  expect_rejected(attributes(s, kJ2k).fragments({siz(20, 12, 64)}).build(), ErrorKind::kCorrupt, "J2K no data");
  // RLE header claiming 9 segments for 16-bit grey.
  Bytes rle = rle_frame(s.values, 2);
  put_le32(rle, 0, 9);
  expect_rejected(attributes(s, kRle).fragments({rle}).build(), ErrorKind::kCorrupt, "RLE segments");
}

TEST(DicomReader, LimitsAreCheckedBeforeDecoding) {
  Synthetic s;
  s.values = ramp(s);
  const Bytes file = native_file(s);
  ReadLimits small;
  small.max_pixels = 100;  // 20x12 = 240
  EXPECT_THROW(
      {
        try {
          decode(file, small);
        } catch (const ImageError& e) {
          EXPECT_EQ(e.kind(), ErrorKind::kTooLarge);
          throw;
        }
      },
      ImageError);
  ReadLimits narrow;
  narrow.max_dimension = 16;
  try {
    decode(file, narrow);
    ADD_FAILURE() << "decoded";
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kTooLarge);
  }
  // 60000 x 60000 declared over a few bytes of pixel data: rejected on the header alone.
  Synthetic huge = s;
  huge.rows = huge.cols = 60000;
  expect_rejected(attributes(huge, kExplicitLE).pixels(s.values, 16).build(), ErrorKind::kTooLarge, "60000^2");
}

// ------------------------------------------------------------------------------------------------------------
// Hostile input built from the real files

TEST(DicomReader, EmptyInput) {
  EXPECT_THROW(
      {
        try {
          decode_dicom(nullptr, 0, "test.dcm", {});
        } catch (const ImageError& e) {
          EXPECT_EQ(e.kind(), ErrorKind::kEmpty);
          throw;
        }
      },
      ImageError);
  const Bytes one(1, 0);
  try {
    decode_dicom(one.data(), 0, "test.dcm", {});
    ADD_FAILURE();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kEmpty);
  }
}

TEST(DicomReader, TruncatedFiles) {
  for (const char* file : {"CR-MONO1-10-chest.dcm", "pydicom_dicomdirtests_CR1_6154_16x16.dcm", "RG3_J2KI.dcm",
                           "CR-ModalitySequenceLUT.dcm"}) {
    const Bytes full = sample(file);
    for (double frac : {0.25, 0.5, 0.75, 0.99}) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() * frac));
      expect_rejected(cut, ErrorKind::kTruncated, std::string(file) + " cut at " + std::to_string(frac));
    }
    const Bytes minus_one(full.begin(), full.end() - 1);
    expect_rejected(minus_one, ErrorKind::kTruncated, std::string(file) + " minus one byte");
  }
}

TEST(DicomReader, EveryCutOfTheTinyFileIsRejected) {
  // Cut inside an element: truncated; cut at an element boundary before Pixel Data: no pixel data (corrupt);
  // cut inside the zero preamble: no valid element (corrupt). Never a success, never another kind.
  const Bytes full = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
  for (size_t n = 1; n < full.size(); ++n) {
    try {
      decode_dicom(full.data(), n, "cut", {});
      ADD_FAILURE() << "cut at " << n << " decoded";
    } catch (const ImageError& e) {
      EXPECT_TRUE(e.kind() == ErrorKind::kTruncated || e.kind() == ErrorKind::kCorrupt)
          << n << ": " << error_kind_name(e.kind()) << " " << e.reason();
    }
  }
}

TEST(DicomReader, MutatedLengthFields) {
  {
    Bytes b = sample("CR-MONO1-10-chest.dcm");  // implicit VR: tag, 4-byte length
    const size_t pd = find_tag(b, 0x7FE0, 0x0010);
    put_le32(b, pd + 4, 0xFFFFFFF0);
    expect_rejected(b, ErrorKind::kTooLarge, "implicit PixelData length 0xFFFFFFF0");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");  // explicit VR OW: tag, VR, 00 00, length
    const size_t pd = find_tag(b, 0x7FE0, 0x0010);
    put_le32(b, pd + 8, 0xFFFFFFF0);
    expect_rejected(b, ErrorKind::kTooLarge, "explicit PixelData length 0xFFFFFFF0");
    put_le32(b, pd + 8, 0x7FFFFFFF);
    expect_rejected(b, ErrorKind::kTruncated, "explicit PixelData length 0x7FFFFFFF");
  }
  {
    Bytes b = sample("CR-MONO1-10-chest.dcm");
    const size_t rows = find_tag(b, 0x0028, 0x0010);
    put_le32(b, rows + 4, 0x7FFFFFFF);  // Rows (US) claiming 2 GiB
    expect_rejected(b, ErrorKind::kTruncated, "Rows length 0x7FFFFFFF");
    Bytes first = sample("CR-MONO1-10-chest.dcm");
    put_le32(first, 4, 0x7FFFFFFF);  // the very first element
    expect_rejected(first, ErrorKind::kCorrupt, "first element length 0x7FFFFFFF");
  }
  {
    Bytes b = sample("RG3_J2KI.dcm");
    const size_t pd = find_tag(b, 0x7FE0, 0x0010, 1000);
    const size_t frag = find_tag(b, 0xFFFE, 0xE000, pd + 20);  // the first fragment after the offset table
    put_le32(b, frag + 4, 0xFFFFFFF0);
    expect_rejected(b, ErrorKind::kTooLarge, "J2K fragment length 0xFFFFFFF0");
  }
  {
    // Native pixel data shorter than one frame (length field and data cut to half).
    Bytes b = sample("CR-MONO1-10-chest.dcm");
    const size_t pd = find_tag(b, 0x7FE0, 0x0010);
    const uint32_t half = (440 * 440 * 2) / 2;
    put_le32(b, pd + 4, half);
    b.resize(pd + 8 + half);
    expect_rejected(b, ErrorKind::kTruncated, "short pixel data");
  }
}

TEST(DicomReader, MutatedAttributes) {
  {
    Bytes b = sample("CR-MONO1-10-chest.dcm");
    put_le16(b, find_tag(b, 0x0028, 0x0010) + 8, 0);
    expect_rejected(b, ErrorKind::kCorrupt, "rows 0");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");  // explicit: tag, VR, 2-byte length, value
    put_le16(b, find_tag(b, 0x0028, 0x0011) + 8, 0);
    expect_rejected(b, ErrorKind::kCorrupt, "columns 0");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
    const size_t pi = find_tag(b, 0x0028, 0x0004);
    const uint16_t len = static_cast<uint16_t>(b[pi + 6] | (b[pi + 7] << 8));
    std::string rgb = "RGB";
    rgb.resize(len, ' ');
    std::copy(rgb.begin(), rgb.end(), b.begin() + static_cast<std::ptrdiff_t>(pi + 8));
    expect_rejected(b, ErrorKind::kUnsupported, "photometric RGB");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
    put_le16(b, find_tag(b, 0x0028, 0x0100) + 8, 32);
    expect_rejected(b, ErrorKind::kUnsupported, "BitsAllocated 32");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
    put_le16(b, find_tag(b, 0x0028, 0x0101) + 8, 17);
    expect_rejected(b, ErrorKind::kUnsupported, "BitsStored 17");
  }
  {
    Bytes b = sample("pydicom_dicomdirtests_CR1_6154_16x16.dcm");
    const size_t ts = find_tag(b, 0x0002, 0x0010);
    b[ts + 8 + 18] = '9';  // "1.2.840.10008.1.2.1" -> "1.2.840.10008.1.2.9"
    expect_rejected(b, ErrorKind::kUnsupported, "unknown transfer syntax");
  }
}

TEST(DicomReader, GarbageAfterPreamble) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    Bytes b(128, 0);
    b.insert(b.end(), {'D', 'I', 'C', 'M'});
    for (int i = 0; i < 5000; ++i) b.push_back(static_cast<uint8_t>(rng()));
    expect_rejected(b, ErrorKind::kCorrupt, "garbage " + std::to_string(trial));
  }
}

TEST(DicomReader, RandomMutationsNeverCrash) {
  // A small deterministic fuzz pass: every outcome is an image in [0,1] or an ImageError, each fast.
  std::mt19937 rng(12345);
  struct Plan {
    const char* file;
    int rounds;
  };
  for (const Plan& plan : {Plan{"pydicom_dicomdirtests_CR1_6154_16x16.dcm", 300}, Plan{"CR-MONO1-10-chest.dcm", 60},
                           Plan{"RG3_J2KI.dcm", 8}, Plan{"CR-ModalitySequenceLUT.dcm", 6}}) {
    const Bytes original = sample(plan.file);
    for (int round = 0; round < plan.rounds; ++round) {
      Bytes b = original;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        const size_t pos = rng() % b.size();
        switch (rng() % 4) {
          case 0: b[pos] = static_cast<uint8_t>(rng()); break;
          case 1: b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
          case 2:
            if (pos + 4 <= b.size()) put_le32(b, pos, static_cast<uint32_t>(rng()));
            break;
          default: b.resize(std::max<size_t>(1, pos)); break;
        }
      }
      const auto t0 = std::chrono::steady_clock::now();
      try {
        const Image img = decode(b);
        ASSERT_EQ(img.pixels.size(), static_cast<size_t>(img.info.width) * static_cast<size_t>(img.info.height));
        for (float v : img.pixels) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
      } catch (const ImageError&) {
      }
      EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0)
          << plan.file << " round " << round;
    }
  }
}

}  // namespace
}  // namespace wristssl::io
