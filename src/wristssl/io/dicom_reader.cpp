// DICOM input through DCMTK (dcmdata + dcmimgle, with the dcmjpeg / dcmjpls / RLE decoders), plus JPEG 2000
// through OpenJPEG, which DCMTK 3.6.7 lacks: the codestream of frame 0 is decoded here and put back into the
// data set as native pixel data, so that the Modality LUT, VOI and MONOCHROME1 handling of DicomImage is the
// same for every transfer syntax.
//
// Hostile input. The file is parsed from memory through a DcmInputStream whose factory lets DCMTK defer every
// value longer than kMaxReadLength: DCMTK then *skips* such a value instead of allocating it, and a skip that
// runs past the end of the data fails the parse. So no element can make DCMTK allocate more than the file
// holds. Before any pixel is decoded, rows * columns and the compressed frame header (JPEG SOF, JPEG-LS SOF55,
// RLE header, JPEG 2000 SIZ) are checked against the limits and against the DICOM attributes. DCMTK reads
// nested sequences recursively; the nesting depth is bounded by the number of item tags in the file, and when
// that number is large the work runs on a thread whose stack is sized for it.

#include <dcmtk/config/osconfig.h>  // must come first

#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrma.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <openjpeg.h>
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "wristssl/io/dicom_header.h"
#include "wristssl/io/image.h"
#include "wristssl/io/read_image.h"

namespace wristssl::io {
namespace {

// Values longer than this are not read while parsing: DCMTK skips them (the skip fails past the end of the
// data) and loads them from memory when they are used.
constexpr Uint32 kMaxReadLength = 4096;
// More item tags than this: reject (each parsed element costs DCMTK ~100-200 bytes of heap).
constexpr size_t kMaxItemTags = 100000;
// Up to this many item tags (so at most this nesting depth) DCMTK runs on the caller's stack.
constexpr size_t kInlineItemTags = 128;
// Stack per possible nesting level when DCMTK runs on its own thread (measured use is far lower; see tests).
constexpr size_t kStackPerLevel = 8 * 1024;
constexpr size_t kBaseStack = 16u << 20;

[[noreturn]] void fail(ErrorKind kind, const std::string& name, const std::string& reason) {
  throw ImageError(kind, name, reason);
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, std::min(s.size(), s.find_first_not_of(ws)));
  const size_t end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// ------------------------------------------------------------------------------------------------------------
// DCMTK setup

void init_dcmtk_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);  // DCMTK prints nothing to stderr
    DJDecoderRegistration::registerCodecs();    // JPEG baseline, extended, spectral, progressive, lossless
    DJLSDecoderRegistration::registerCodecs();  // JPEG-LS
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

// Without the data dictionary DCMTK does not know the VR of implicit VR elements, so their values
// would read as missing: say why instead of calling the file corrupt.
void ready_dcmtk(const std::string& name) {
  init_dcmtk_once();
  if (!dcmDataDict.isDictionaryLoaded())
    fail(ErrorKind::kUnsupported, name, "the DCMTK data dictionary is not installed (DCMDICTPATH)");
}

// ------------------------------------------------------------------------------------------------------------
// A DcmInputStream over a memory block that supports deferred loading (newFactory).

struct ParseStats {
  Uint64 largest_short_request = 0;  // the largest read/skip that ran past the end of the data
  bool hit_end = false;
  bool compression_requested = false;  // deflated transfer syntax
};

class MemoryProducer : public DcmProducer {
 public:
  MemoryProducer(const uint8_t* data, size_t size, ParseStats* stats) : data_(data), size_(size), stats_(stats) {}
  OFBool good() const override { return status_.good(); }
  OFCondition status() const override { return status_; }
  OFBool eos() override { return pos_ >= size_; }
  offile_off_t avail() override { return static_cast<offile_off_t>(size_ - pos_); }
  offile_off_t read(void* buf, offile_off_t buflen) override {
    if (!status_.good() || buflen <= 0) return 0;
    const size_t want = static_cast<size_t>(buflen);
    const size_t n = std::min(want, size_ - pos_);
    if (n < want) note_short(want);
    if (n > 0) std::memcpy(buf, data_ + pos_, n);
    pos_ += n;
    return static_cast<offile_off_t>(n);
  }
  offile_off_t skip(offile_off_t skiplen) override {
    if (!status_.good() || skiplen <= 0) return 0;
    const Uint64 want = static_cast<Uint64>(skiplen);
    const size_t n = static_cast<size_t>(std::min<Uint64>(want, size_ - pos_));
    if (n < want) note_short(want);
    pos_ += n;
    return static_cast<offile_off_t>(n);
  }
  void putback(offile_off_t num) override {
    if (num < 0 || static_cast<Uint64>(num) > pos_) {
      status_ = EC_PutbackFailed;
      return;
    }
    pos_ -= static_cast<size_t>(num);
  }

 private:
  void note_short(Uint64 want) {
    if (!stats_) return;
    stats_->hit_end = true;
    stats_->largest_short_request = std::max(stats_->largest_short_request, want);
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  ParseStats* stats_;
  OFCondition status_ = EC_Normal;
};

class MemoryInputStream : public DcmInputStream {
 public:
  MemoryInputStream(const uint8_t* data, size_t size, ParseStats* stats)
      : DcmInputStream(&producer_), producer_(data, size, stats), data_(data), size_(size), stats_(stats) {}
  DcmInputStreamFactory* newFactory() const override;
  OFCondition installCompressionFilter(E_StreamCompression) override {
    // Deflated data sets could inflate without bound, and a filtered stream cannot defer values: refuse.
    if (stats_) stats_->compression_requested = true;
    return EC_UnsupportedEncoding;
  }

 private:
  MemoryProducer producer_;
  const uint8_t* data_;
  size_t size_;
  ParseStats* stats_;
};

class MemoryStreamFactory : public DcmInputStreamFactory {
 public:
  MemoryStreamFactory(const uint8_t* data, size_t size, offile_off_t offset)
      : data_(data), size_(size), offset_(offset) {}
  DcmInputStream* create() const override {
    auto* s = new MemoryInputStream(data_, size_, nullptr);
    s->skip(offset_);
    return s;
  }
  DcmInputStreamFactory* clone() const override { return new MemoryStreamFactory(*this); }
  DcmInputStreamFactoryType ident() const override { return DFT_DcmInputFileStreamFactory; }

 private:
  const uint8_t* data_;
  size_t size_;
  offile_off_t offset_;
};

DcmInputStreamFactory* MemoryInputStream::newFactory() const {
  if (currentProducer() != &producer_) return nullptr;  // a filter is installed
  return new MemoryStreamFactory(data_, size_, tell());
}

// ------------------------------------------------------------------------------------------------------------
// Byte helpers for the compressed-frame header checks.

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
uint32_t le32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[3]) << 24) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[1]) << 8) | p[0];
}

// Counts (FFFE,E000) item tags, little and big endian, at any offset: an upper bound on the nesting depth.
size_t count_item_tags(const uint8_t* data, size_t size) {
  size_t count = 0;
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  while (p < end) {
    const void* hit = std::memchr(p, 0xFE, static_cast<size_t>(end - p));
    if (!hit) break;
    const uint8_t* q = static_cast<const uint8_t*>(hit);
    if (end - q >= 4 && q[1] == 0xFF && q[2] == 0x00 && q[3] == 0xE0) ++count;           // FE FF 00 E0
    if (q > data && end - q >= 3 && q[-1] == 0xFF && q[1] == 0xE0 && q[2] == 0x00) ++count;  // FF FE E0 00
    p = q + 1;
  }
  return count;
}

struct FrameHeader {
  int width = 0;
  int height = 0;
  int components = 0;
  int precision = 0;
};

// The SOF (or JPEG-LS SOF55) header of a JPEG frame; throws kCorrupt when there is none before the scan.
FrameHeader parse_jpeg_sof(const std::vector<uint8_t>& b, const std::string& name) {
  const size_t n = b.size();
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) fail(ErrorKind::kCorrupt, name, "JPEG frame does not start with SOI");
  size_t pos = 2;
  while (pos < n) {
    if (b[pos] != 0xFF) fail(ErrorKind::kCorrupt, name, "JPEG frame: garbage between marker segments");
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) break;
    const uint8_t marker = b[pos++];
    const bool sof = (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) ||
                     marker == 0xF7;  // SOF55 (JPEG-LS)
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD8 || marker == 0xD9 || marker == 0xDA || marker == 0x00)
      fail(ErrorKind::kCorrupt, name, "JPEG frame: no frame header before the scan");
    if (pos + 2 > n) break;
    const size_t len = be16(&b[pos]);
    if (len < 2 || pos + len > n) break;
    if (sof) {
      if (len < 8) fail(ErrorKind::kCorrupt, name, "JPEG frame header too short");
      FrameHeader h;
      h.precision = b[pos + 2];
      h.height = be16(&b[pos + 3]);
      h.width = be16(&b[pos + 5]);
      h.components = b[pos + 7];
      return h;
    }
    pos += len;
  }
  fail(ErrorKind::kTruncated, name, "JPEG frame ends before its frame header");
}

// Locates the JPEG 2000 codestream in `b` (raw codestream, or the jp2c box of a JP2 file).
std::pair<size_t, size_t> locate_j2k_codestream(const std::vector<uint8_t>& b, const std::string& name) {
  static const uint8_t kJp2Sig[12] = {0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A};
  if (b.size() >= 4 && b[0] == 0xFF && b[1] == 0x4F && b[2] == 0xFF && b[3] == 0x51) return {0, b.size()};
  if (b.size() >= 12 && std::memcmp(b.data(), kJp2Sig, 12) == 0) {
    size_t pos = 0;
    while (pos + 8 <= b.size()) {
      uint64_t len = be32(&b[pos]);
      const uint32_t type = be32(&b[pos + 4]);
      size_t header = 8;
      if (len == 1) {
        if (pos + 16 > b.size()) break;
        len = (static_cast<uint64_t>(be32(&b[pos + 8])) << 32) | be32(&b[pos + 12]);
        header = 16;
      } else if (len == 0) {
        len = b.size() - pos;
      }
      if (len < header || len > b.size() - pos) break;
      if (type == 0x6A703263) return {pos + header, static_cast<size_t>(len) - header};  // 'jp2c'
      pos += static_cast<size_t>(len);
    }
    fail(ErrorKind::kCorrupt, name, "JP2 data without a usable codestream box");
  }
  fail(ErrorKind::kCorrupt, name, "JPEG 2000 frame does not start with a codestream (SOC, SIZ)");
}

// ------------------------------------------------------------------------------------------------------------
// JPEG 2000 through OpenJPEG, from memory.

struct OpjMemory {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

OPJ_SIZE_T opj_mem_read(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (m->pos >= m->size) return static_cast<OPJ_SIZE_T>(-1);
  const size_t k = std::min<size_t>(n, m->size - m->pos);
  std::memcpy(buffer, m->data + m->pos, k);
  m->pos += k;
  return k;
}

OPJ_OFF_T opj_mem_skip(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (n >= 0) {
    m->pos = static_cast<Uint64>(n) > m->size - m->pos ? m->size : m->pos + static_cast<size_t>(n);
  } else {
    const Uint64 back = static_cast<Uint64>(-(n + 1)) + 1;
    m->pos = back > m->pos ? 0 : m->pos - static_cast<size_t>(back);
  }
  return n;
}

OPJ_BOOL opj_mem_seek(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (n < 0 || static_cast<Uint64>(n) > m->size) return OPJ_FALSE;
  m->pos = static_cast<size_t>(n);
  return OPJ_TRUE;
}

void opj_quiet(const char*, void*) {}
void opj_keep_error(const char* msg, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->empty() && msg) *s = trim(msg);
}

struct J2kTarget {
  int rows = 0;
  int cols = 0;
  int samples = 1;
  int bits_allocated = 16;
  int bits_stored = 16;
  int high_bit = 15;
  bool is_signed = false;
};

// Checks the SIZ marker against the DICOM attributes and the tile count, before OpenJPEG allocates anything.
void check_j2k_siz(const uint8_t* cs, size_t n, const J2kTarget& t, const std::string& name) {
  if (n < 4 + 41 || be16(cs) != 0xFF4F || be16(cs + 2) != 0xFF51)
    fail(ErrorKind::kCorrupt, name, "JPEG 2000 codestream without SOC/SIZ");
  const uint8_t* s = cs + 4;  // SIZ segment, starting at Lsiz
  const size_t lsiz = be16(s);
  if (lsiz < 41 || 4 + lsiz > n) fail(ErrorKind::kCorrupt, name, "JPEG 2000 SIZ segment too short");
  const uint64_t xsiz = be32(s + 4), ysiz = be32(s + 8), xo = be32(s + 12), yo = be32(s + 16);
  const uint64_t xt = be32(s + 20), yt = be32(s + 24), xto = be32(s + 28), yto = be32(s + 32);
  const size_t csiz = be16(s + 36);
  if (csiz == 0 || lsiz != 38 + 3 * csiz) fail(ErrorKind::kCorrupt, name, "JPEG 2000 SIZ: bad component count");
  if (xsiz <= xo || ysiz <= yo || xt == 0 || yt == 0 || xto > xo || yto > yo || xto + xt <= xo || yto + yt <= yo)
    fail(ErrorKind::kCorrupt, name, "JPEG 2000 SIZ: bad image or tile geometry");
  const uint64_t w = xsiz - xo, h = ysiz - yo;
  if (w != static_cast<uint64_t>(t.cols) || h != static_cast<uint64_t>(t.rows)) {
    std::ostringstream os;
    os << "JPEG 2000 frame is " << w << "x" << h << " but the DICOM header says " << t.cols << "x" << t.rows;
    fail(ErrorKind::kCorrupt, name, os.str());
  }
  if (csiz != static_cast<size_t>(t.samples)) {
    fail(ErrorKind::kCorrupt, name,
         "JPEG 2000 frame has " + std::to_string(csiz) + " components, samples per pixel is " +
             std::to_string(t.samples));
  }
  const uint8_t ssiz = s[38];
  const int precision = (ssiz & 0x7F) + 1;
  if (precision > 16) fail(ErrorKind::kUnsupported, name, "JPEG 2000 precision above 16 bits");
  if (s[39] != 1 || s[40] != 1) fail(ErrorKind::kUnsupported, name, "JPEG 2000 component subsampling");
  const uint64_t tw = (xsiz - xto + xt - 1) / xt, th = (ysiz - yto + yt - 1) / yt;
  // OpenJPEG keeps a few KB per tile: allow at most about one tile per 1024 pixels.
  if (tw * th > 16 + (w * h) / 1024) fail(ErrorKind::kCorrupt, name, "JPEG 2000 SIZ: implausible tile count");
}

// Decodes a J2K codestream to stored values laid out as native DICOM pixel data (little endian words).
std::vector<uint8_t> decode_j2k(const uint8_t* cs, size_t n, const J2kTarget& t, const std::string& name) {
  check_j2k_siz(cs, n, t, name);
  std::string error;
  using CodecPtr = std::unique_ptr<opj_codec_t, void (*)(opj_codec_t*)>;
  using StreamPtr = std::unique_ptr<opj_stream_t, void (*)(opj_stream_t*)>;
  using ImagePtr = std::unique_ptr<opj_image_t, void (*)(opj_image_t*)>;
  CodecPtr codec(opj_create_decompress(OPJ_CODEC_J2K), opj_destroy_codec);
  if (!codec) fail(ErrorKind::kCorrupt, name, "OpenJPEG: cannot create a decoder");
  opj_set_info_handler(codec.get(), opj_quiet, nullptr);
  opj_set_warning_handler(codec.get(), opj_quiet, nullptr);
  opj_set_error_handler(codec.get(), opj_keep_error, &error);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  if (!opj_setup_decoder(codec.get(), &params)) fail(ErrorKind::kCorrupt, name, "OpenJPEG: setup failed");

  OpjMemory mem{cs, n, 0};
  StreamPtr stream(opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE), opj_stream_destroy);
  if (!stream) fail(ErrorKind::kCorrupt, name, "OpenJPEG: cannot create a stream");
  opj_stream_set_read_function(stream.get(), opj_mem_read);
  opj_stream_set_skip_function(stream.get(), opj_mem_skip);
  opj_stream_set_seek_function(stream.get(), opj_mem_seek);
  opj_stream_set_user_data(stream.get(), &mem, nullptr);
  opj_stream_set_user_data_length(stream.get(), n);

  opj_image_t* raw = nullptr;
  const bool header_ok = opj_read_header(stream.get(), codec.get(), &raw);
  ImagePtr image(raw, opj_image_destroy);
  if (!header_ok || !image) fail(ErrorKind::kCorrupt, name, "JPEG 2000 header: " + error);
  if (!opj_decode(codec.get(), stream.get(), image.get()) || !opj_end_decompress(codec.get(), stream.get())) {
    const bool truncated = mem.pos >= mem.size;
    fail(truncated ? ErrorKind::kTruncated : ErrorKind::kCorrupt, name,
         "JPEG 2000 decoding failed" + (error.empty() ? std::string() : ": " + error));
  }
  if (image->numcomps != static_cast<OPJ_UINT32>(t.samples) || !image->comps || !image->comps[0].data)
    fail(ErrorKind::kCorrupt, name, "JPEG 2000: decoded image has no data");
  for (int c = 0; c < t.samples; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    if (comp.w != static_cast<OPJ_UINT32>(t.cols) || comp.h != static_cast<OPJ_UINT32>(t.rows) || !comp.data)
      fail(ErrorKind::kCorrupt, name, "JPEG 2000: decoded size differs from the DICOM header");
  }

  // Values go back as BitsStored-bit samples at HighBit. Same signedness as PixelRepresentation: clamp to the
  // stored range (lossy coding overshoots). Different signedness: keep the low BitsStored bits, as GDCM does.
  const size_t pixels = static_cast<size_t>(t.rows) * static_cast<size_t>(t.cols);
  const int bytes = t.bits_allocated / 8;
  std::vector<uint8_t> out(pixels * static_cast<size_t>(t.samples) * static_cast<size_t>(bytes));
  const int64_t lo = t.is_signed ? -(int64_t{1} << (t.bits_stored - 1)) : 0;
  const int64_t hi = t.is_signed ? (int64_t{1} << (t.bits_stored - 1)) - 1 : (int64_t{1} << t.bits_stored) - 1;
  const uint32_t mask = static_cast<uint32_t>((uint64_t{1} << t.bits_stored) - 1);
  const int shift = t.high_bit + 1 - t.bits_stored;
  for (int c = 0; c < t.samples; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    const bool same_sign = (comp.sgnd != 0) == t.is_signed;
    for (size_t i = 0; i < pixels; ++i) {
      int64_t v = comp.data[i];
      if (same_sign) v = std::clamp(v, lo, hi);
      const uint32_t word = (static_cast<uint32_t>(v) & mask) << shift;
      const size_t at = (i * static_cast<size_t>(t.samples) + static_cast<size_t>(c)) * static_cast<size_t>(bytes);
      out[at] = static_cast<uint8_t>(word & 0xFF);
      if (bytes == 2) out[at + 1] = static_cast<uint8_t>((word >> 8) & 0xFF);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Transfer syntaxes we decode.

enum class Codec { kNative, kRle, kJpeg, kJpegLs, kJ2k, kNone };

Codec codec_for(E_TransferSyntax x) {
  switch (x) {
    case EXS_LittleEndianImplicit:
    case EXS_LittleEndianExplicit:
    case EXS_BigEndianExplicit:
    case EXS_BigEndianImplicit:  // only ever auto-detected for a bare data set; DCMTK reads it
      return Codec::kNative;
    case EXS_RLELossless:
      return Codec::kRle;
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess6_8:
    case EXS_JPEGProcess10_12:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
      return Codec::kJpeg;
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
      return Codec::kJpegLs;
    case EXS_JPEG2000LosslessOnly:
    case EXS_JPEG2000:
      return Codec::kJ2k;
    default:
      return Codec::kNone;
  }
}

// Starts of J2K / JPEG codestreams, to split fragments into frames when there is no offset table.
bool starts_frame(const uint8_t* p, size_t n) {
  if (n >= 2 && p[0] == 0xFF && (p[1] == 0x4F || p[1] == 0xD8)) return true;  // SOC, SOI
  return n >= 8 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0x0C && p[4] == 0x6A && p[5] == 0x50;  // JP2
}

// The concatenated fragments of frame 0.
std::vector<uint8_t> frame0_bytes(DcmPixelSequence* seq, long frames, const std::string& name) {
  const unsigned long count = seq->card();
  if (count < 2) fail(ErrorKind::kCorrupt, name, "encapsulated pixel data without fragments");
  auto fragment = [&](unsigned long i, Uint8*& value, Uint32& length) {
    DcmPixelItem* item = nullptr;
    if (seq->getItem(item, i).bad() || !item) fail(ErrorKind::kCorrupt, name, "cannot access a pixel fragment");
    length = item->getLengthField();
    value = nullptr;
    if (length > 0 && (item->getUint8Array(value).bad() || !value))
      fail(ErrorKind::kTruncated, name, "cannot read a pixel fragment");
  };
  // With several frames, frame 1 starts at the second Basic Offset Table entry, when there is a usable one.
  uint64_t frame1_offset = std::numeric_limits<uint64_t>::max();
  bool use_markers = false;
  if (frames > 1) {
    Uint8* bot = nullptr;
    Uint32 bot_len = 0;
    fragment(0, bot, bot_len);
    if (bot && bot_len >= 8 && bot_len % 4 == 0 && le32(bot + 4) > le32(bot)) {
      frame1_offset = le32(bot + 4);
    } else {
      use_markers = true;
    }
  }
  std::vector<uint8_t> out;
  uint64_t offset = 0;  // offset of the current item from the first fragment, as in the offset table
  for (unsigned long i = 1; i < count; ++i) {
    Uint8* value = nullptr;
    Uint32 length = 0;
    if (frames > 1 && !use_markers && offset >= frame1_offset) break;
    fragment(i, value, length);
    if (frames > 1 && use_markers && i > 1 && value && starts_frame(value, length)) break;
    if (value && length > 0) out.insert(out.end(), value, value + length);
    offset += 8 + uint64_t{length};
  }
  if (out.empty()) fail(ErrorKind::kCorrupt, name, "frame 0 has no compressed data");
  return out;
}

void check_rle_header(const std::vector<uint8_t>& b, int segments, const std::string& name) {
  if (b.size() < 64) fail(ErrorKind::kTruncated, name, "RLE frame shorter than its header");
  const uint32_t n = le32(b.data());
  if (n == 0 || n > 15 || static_cast<int>(n) != segments)
    fail(ErrorKind::kCorrupt, name, "RLE header: " + std::to_string(n) + " segments, expected " +
                                        std::to_string(segments));
  uint32_t prev = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t off = le32(b.data() + 4 + 4 * i);
    if ((i == 0 && off != 64) || off < prev || off >= b.size())
      fail(ErrorKind::kCorrupt, name, "RLE header: bad segment offset");
    prev = off;
  }
}

// ------------------------------------------------------------------------------------------------------------

struct Attributes {
  int rows = 0, cols = 0, samples = 1, bits_allocated = 0, bits_stored = 0, high_bit = 0, pixel_rep = 0;
  long frames = 1;
  std::string photometric;
  // Which values the file itself has. A missing Rows is reported differently from a zero one,
  // missing BitsStored / HighBit are derived from BitsAllocated, and NumberOfFrames is rewritten
  // only when present (dcmimgle takes an absent one as 1, which is what we decode).
  bool has_rows = false, has_cols = false, has_bits_allocated = false, has_bits_stored = false,
       has_high_bit = false, has_frames = false;
};

long get_int(DcmItem* ds, const DcmTagKey& key, long fallback, bool* present = nullptr) {
  Uint16 u = 0;
  if (ds->findAndGetUint16(key, u).good()) {
    if (present) *present = true;
    return u;
  }
  Sint32 s = 0;
  if (ds->findAndGetSint32(key, s).good()) {  // IS, SL
    if (present) *present = true;
    return s;
  }
  if (present) *present = false;
  return fallback;
}

bool get_double(DcmItem* ds, const DcmTagKey& key, unsigned long pos, double& out) {
  Float64 v = 0;
  if (ds->findAndGetFloat64(key, v, pos).bad()) return false;
  out = v;
  return std::isfinite(v);
}

std::string describe(const OFCondition& c) { return c.text() ? std::string(c.text()) : std::string("error"); }

// Parses the bytes into `file` through the deferring memory stream (see the top of this file); throws an
// ImageError naming the file and the reason when the data is not a readable data set.
void parse_file(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits,
                DcmFileFormat& file) {
  ParseStats stats;
  {
    MemoryInputStream in(data, size, &stats);
    file.transferInit();
    const OFCondition cond = file.read(in, EXS_Unknown, EGL_noChange, kMaxReadLength);
    file.transferEnd();
    if (stats.compression_requested)
      fail(ErrorKind::kUnsupported, name, "deflated transfer syntax is not supported");
    if (cond.bad()) {
      // Not even one element made sense: random bytes (often with an absurd first length), not a cut file.
      const DcmMetaInfo* m = file.getMetaInfo();
      const DcmDataset* d = file.getDataset();
      if ((!m || m->card() == 0) && (!d || d->card() <= 1))
        fail(ErrorKind::kCorrupt, name, "no valid DICOM element at the start (" + describe(cond) + ")");
      if (stats.largest_short_request > static_cast<Uint64>(limits.max_file_bytes) &&
          stats.largest_short_request > size) {
        fail(ErrorKind::kTooLarge, name,
             "a length field asks for " + std::to_string(stats.largest_short_request) + " bytes");
      }
      if (cond == EC_StreamNotifyClient || cond == EC_EndOfStream || stats.hit_end)
        fail(ErrorKind::kTruncated, name, "the data ends inside an element (" + describe(cond) + ")");
      fail(ErrorKind::kCorrupt, name, "cannot parse the data set: " + describe(cond));
    }
  }
  const DcmDataset* ds = file.getDataset();
  if (!ds) fail(ErrorKind::kCorrupt, name, "no data set");
  if (ds->card() == 0) fail(ErrorKind::kTruncated, name, "the file ends before the data set");
}

// ------------------------------------------------------------------------------------------------------------
// The stages of decode_impl, in the order it runs them. The order of the checks is part of the
// behaviour: a file with several faults is reported by the first one met, and a declared size
// beyond the limits is rejected on the header alone, before the pixel data is looked at.

// How the pixel data is coded.
struct Encoding {
  E_TransferSyntax xfer = EXS_Unknown;
  Codec codec = Codec::kNone;
};

// Decoding follows the transfer syntax DCMTK read the data set in. The meta header's UID is only
// reported, and refused when DCMTK does not know it (a newer or private syntax could be misread).
Encoding read_transfer_syntax(DcmDataset* ds, DcmMetaInfo* meta, const std::string& name,
                              ImageInfo& info) {
  OFString meta_uid;
  if (meta) meta->findAndGetOFString(DCM_TransferSyntaxUID, meta_uid);
  const std::string declared = trim(meta_uid.c_str());
  if (!declared.empty() && DcmXfer(declared.c_str()).getXfer() == EXS_Unknown)
    fail(ErrorKind::kUnsupported, name, "unknown transfer syntax " + declared);
  Encoding enc;
  enc.xfer = ds->getOriginalXfer();
  const DcmXfer xfer_info(enc.xfer);
  info.transfer_syntax = declared.empty() ? std::string(xfer_info.getXferID()) : declared;
  info.transfer_syntax_name = xfer_info.getXferName();
  enc.codec = codec_for(enc.xfer);
  if (enc.codec == Codec::kNone)
    fail(ErrorKind::kUnsupported, name,
         "transfer syntax " + info.transfer_syntax_name + " is not supported");
  return enc;
}

// What kind of acquisition (CR, DX, ...); identifying and patient fields are never read.
std::string read_modality(DcmDataset* ds) {
  OFString modality;
  if (ds->findAndGetOFString(DCM_Modality, modality).bad()) return std::string();
  return trim(modality.c_str());
}

// The attributes as the file gives them; they are judged once the pixel data is known to exist.
Attributes read_attributes(DcmDataset* ds) {
  Attributes a;
  a.rows = static_cast<int>(get_int(ds, DCM_Rows, 0, &a.has_rows));
  a.cols = static_cast<int>(get_int(ds, DCM_Columns, 0, &a.has_cols));
  a.samples = static_cast<int>(get_int(ds, DCM_SamplesPerPixel, 1));
  a.bits_allocated = static_cast<int>(get_int(ds, DCM_BitsAllocated, 0, &a.has_bits_allocated));
  a.bits_stored = static_cast<int>(get_int(ds, DCM_BitsStored, 0, &a.has_bits_stored));
  a.high_bit = static_cast<int>(get_int(ds, DCM_HighBit, a.bits_stored - 1, &a.has_high_bit));
  a.pixel_rep = static_cast<int>(get_int(ds, DCM_PixelRepresentation, 0));
  OFString pi;
  ds->findAndGetOFString(DCM_PhotometricInterpretation, pi);
  a.photometric = trim(pi.c_str());
  std::transform(a.photometric.begin(), a.photometric.end(), a.photometric.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return a;
}

// A file without integer pixel data is not a radiograph we can read, whatever its attributes say,
// so this is reported before any of them is judged.
DcmElement* find_pixel_data(DcmDataset* ds, const std::string& name) {
  DcmElement* pixel_elem = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, pixel_elem).bad() || !pixel_elem) {
    if (ds->tagExists(DCM_FloatPixelData) || ds->tagExists(DCM_DoubleFloatPixelData))
      fail(ErrorKind::kUnsupported, name, "float pixel data is not supported");
    fail(ErrorKind::kCorrupt, name, "no pixel data");
  }
  return pixel_elem;
}

// The size limits come first, before anything that could allocate for the image. What ACR-NEMA
// style files leave out is filled in, and the values we use are written back, so that dcmimgle
// renders what we checked.
void check_attributes(DcmDataset* ds, Attributes& a, const std::string& name,
                      const ReadLimits& limits) {
  if (!a.has_rows || !a.has_cols) fail(ErrorKind::kCorrupt, name, "missing Rows or Columns");
  if (a.rows <= 0 || a.cols <= 0) fail(ErrorKind::kCorrupt, name, "zero rows or columns");
  if (a.rows > limits.max_dimension || a.cols > limits.max_dimension ||
      int64_t{a.rows} * int64_t{a.cols} > limits.max_pixels) {
    fail(ErrorKind::kTooLarge, name,
         std::to_string(a.cols) + "x" + std::to_string(a.rows) + " exceeds the size limits");
  }
  if (a.samples < 1 || a.samples > 4) fail(ErrorKind::kCorrupt, name, "bad samples per pixel");
  if (a.photometric.empty()) {
    if (a.samples != 1) fail(ErrorKind::kCorrupt, name, "no photometric interpretation");
    a.photometric = "MONOCHROME2";  // ACR-NEMA style grey image
    ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  }
  if (a.photometric != "MONOCHROME1" && a.photometric != "MONOCHROME2")
    fail(ErrorKind::kUnsupported, name,
         "photometric interpretation " + a.photometric + " is not supported");
  if (a.samples != 1)
    fail(ErrorKind::kCorrupt, name, a.photometric + " with several samples per pixel");
  if (!a.has_bits_allocated) fail(ErrorKind::kCorrupt, name, "missing BitsAllocated");
  if (a.bits_allocated != 8 && a.bits_allocated != 16)
    fail(ErrorKind::kUnsupported, name,
         "BitsAllocated " + std::to_string(a.bits_allocated) + " is not supported");
  if (!a.has_bits_stored) {
    a.bits_stored = a.bits_allocated;
    if (!a.has_high_bit) a.high_bit = a.bits_stored - 1;
  }
  if (a.bits_stored < 1 || a.bits_stored > 16)
    fail(ErrorKind::kUnsupported, name,
         "BitsStored " + std::to_string(a.bits_stored) + " is not supported");
  if (a.bits_stored > a.bits_allocated)
    fail(ErrorKind::kCorrupt, name, "BitsStored exceeds BitsAllocated");
  if (a.high_bit < a.bits_stored - 1 || a.high_bit >= a.bits_allocated)
    fail(ErrorKind::kCorrupt, name, "HighBit " + std::to_string(a.high_bit) + " is inconsistent");
  if (a.pixel_rep != 0 && a.pixel_rep != 1)
    fail(ErrorKind::kCorrupt, name, "bad PixelRepresentation");
  ds->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(a.bits_stored));
  ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(a.high_bit));
  ds->putAndInsertUint16(DCM_PixelRepresentation, static_cast<Uint16>(a.pixel_rep));
  ds->putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(a.samples));
}

// NumberOfFrames missing, unreadable or < 1 means one frame; the data set is made to say so.
void read_frame_count(DcmDataset* ds, Attributes& a) {
  a.has_frames = ds->tagExists(DCM_NumberOfFrames);
  a.frames = get_int(ds, DCM_NumberOfFrames, 1);
  if (a.frames < 1) {
    a.frames = 1;
    if (a.has_frames) ds->putAndInsertString(DCM_NumberOfFrames, "1");
  }
}

// Rescale values that dcmimgle would turn into inf / NaN.
void check_rescale(DcmDataset* ds, const std::string& name) {
  double slope = 1, intercept = 0;
  if (ds->tagExistsWithValue(DCM_RescaleSlope) &&
      (!get_double(ds, DCM_RescaleSlope, 0, slope) || slope == 0 || std::fabs(slope) > 1e9))
    fail(ErrorKind::kCorrupt, name, "bad RescaleSlope");
  if (ds->tagExistsWithValue(DCM_RescaleIntercept) &&
      (!get_double(ds, DCM_RescaleIntercept, 0, intercept) || std::fabs(intercept) > 1e12))
    fail(ErrorKind::kCorrupt, name, "bad RescaleIntercept");
}

// Short native pixel data is a cut file, and is reported as one before dcmimgle sees it; the frame
// count is cut to the whole frames present, so that no frame is indexed that is not there.
void check_native_pixel_data(DcmDataset* ds, DcmPixelData* pixel, bool encapsulated, Attributes& a,
                             const std::string& name) {
  if (encapsulated || pixel->getLengthField() == DCM_UndefinedLength)
    fail(ErrorKind::kCorrupt, name, "encapsulated pixel data in a native transfer syntax");
  const uint64_t frame_bytes =
      uint64_t(a.rows) * uint64_t(a.cols) * uint64_t(a.samples) * (a.bits_allocated / 8);
  const uint64_t length = pixel->getLengthField();
  if (length < frame_bytes) {
    fail(ErrorKind::kTruncated, name,
         "pixel data holds " + std::to_string(length) + " bytes, one frame needs " +
             std::to_string(frame_bytes));
  }
  const long available = static_cast<long>(std::min<uint64_t>(length / frame_bytes, 1u << 30));
  if (a.frames > available) {
    a.frames = available;
    if (a.has_frames) ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(a.frames).c_str());
  }
}

// The JPEG and JPEG-LS decoders size their output by the frame header, not by the attributes.
void check_jpeg_frame(const std::vector<uint8_t>& frame, const Attributes& a,
                      const std::string& name) {
  const FrameHeader h = parse_jpeg_sof(frame, name);
  if (h.width != a.cols || h.height != a.rows || h.components != a.samples || h.precision < 2 ||
      h.precision > 16) {
    std::ostringstream os;
    os << "JPEG frame is " << h.width << "x" << h.height << "x" << h.components << " at "
       << h.precision << " bits but the DICOM header says " << a.cols << "x" << a.rows << "x"
       << a.samples;
    fail(ErrorKind::kCorrupt, name, os.str());
  }
}

// DCMTK cannot decode JPEG 2000 (see the top of this file): frame 0 replaces the pixel data
// element, which is deleted, so that dcmimgle reads one native frame.
void store_j2k_frame(DcmDataset* ds, std::vector<uint8_t> frame, const Attributes& a,
                     const std::string& name) {
  J2kTarget t;
  t.rows = a.rows;
  t.cols = a.cols;
  t.samples = a.samples;
  t.bits_allocated = a.bits_allocated;
  t.bits_stored = a.bits_stored;
  t.high_bit = a.high_bit;
  t.is_signed = a.pixel_rep == 1;
  const auto [start, length] = locate_j2k_codestream(frame, name);
  std::vector<uint8_t> native = decode_j2k(frame.data() + start, length, t, name);
  // The compressed frame goes before the decoded one is copied again, to lower the peak.
  frame.clear();
  frame.shrink_to_fit();
  // Frame 0 goes back into the data set as native little endian pixel data.
  auto* replacement =
      new DcmPixelData(DcmTag(DCM_PixelData, a.bits_allocated == 8 ? EVR_OB : EVR_OW));
  OFCondition put;
  if (a.bits_allocated == 8) {
    put = replacement->putUint8Array(native.data(), static_cast<unsigned long>(native.size()));
  } else {
    std::vector<Uint16> words(native.size() / 2);
    for (size_t i = 0; i < words.size(); ++i)
      words[i] = static_cast<Uint16>(native[2 * i] | (native[2 * i + 1] << 8));
    put = replacement->putUint16Array(words.data(), static_cast<unsigned long>(words.size()));
  }
  if (put.bad() || ds->insert(replacement, OFTrue /*replaceOld*/).bad()) {
    delete replacement;
    fail(ErrorKind::kCorrupt, name, "cannot store the decoded JPEG 2000 frame");
  }
  if (a.has_frames) ds->putAndInsertString(DCM_NumberOfFrames, "1");
}

// Size checks before anything is decoded: native data must hold a frame, and a compressed frame 0
// must have the size and layout of the attributes. Returns the transfer syntax dcmimgle is to read
// the pixel data in.
E_TransferSyntax prepare_pixel_data(DcmDataset* ds, DcmElement* pixel_elem, const Encoding& enc,
                                    Attributes& a, const std::string& name) {
  if (pixel_elem->ident() != EVR_PixelData)
    fail(ErrorKind::kCorrupt, name, "pixel data of an unexpected type");
  auto* pixel = static_cast<DcmPixelData*>(pixel_elem);
  E_TransferSyntax rep_xfer = EXS_Unknown;
  const DcmRepresentationParameter* rep_param = nullptr;
  pixel->getOriginalRepresentationKey(rep_xfer, rep_param);
  const bool encapsulated = DcmXfer(rep_xfer).isEncapsulated();
  if (enc.codec == Codec::kNative) {
    check_native_pixel_data(ds, pixel, encapsulated, a, name);
    return enc.xfer;
  }
  DcmPixelSequence* seq = nullptr;
  if (!encapsulated || pixel->getEncapsulatedRepresentation(rep_xfer, rep_param, seq).bad() || !seq)
    fail(ErrorKind::kCorrupt, name, "native pixel data in an encapsulated transfer syntax");
  const long fragments = static_cast<long>(seq->card()) - 1;
  if (a.frames > fragments) {
    a.frames = std::max(1L, fragments);
    if (a.has_frames) ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(a.frames).c_str());
  }
  std::vector<uint8_t> frame = frame0_bytes(seq, a.frames, name);
  if (enc.codec == Codec::kJpeg || enc.codec == Codec::kJpegLs) {
    check_jpeg_frame(frame, a, name);
  } else if (enc.codec == Codec::kRle) {
    check_rle_header(frame, a.samples * (a.bits_allocated / 8), name);
  } else if (enc.codec == Codec::kJ2k) {
    store_j2k_frame(ds, std::move(frame), a, name);  // `pixel` and `seq` are deleted from here on
    return EXS_LittleEndianExplicit;
  }
  return enc.xfer;
}

// The metadata as decoded: attributes after their defaults, frames cut to those present.
void describe_image(DcmDataset* ds, const Attributes& a, ImageInfo& info) {
  info.width = a.cols;
  info.height = a.rows;
  info.channels = a.samples;
  info.photometric = a.photometric;
  info.bits_stored = a.bits_stored;
  info.frames = static_cast<int>(std::min<long>(a.frames, std::numeric_limits<int>::max()));
  // dcmimgle renders MONOCHROME1 inverted (bone bright).
  info.inverted = a.photometric == "MONOCHROME1";
  double sr = 0, sc = 0;
  for (const DcmTagKey& key : {DCM_PixelSpacing, DCM_ImagerPixelSpacing}) {
    if (get_double(ds, key, 0, sr) && get_double(ds, key, 1, sc) && sr > 0 && sc > 0) {
      info.pixel_spacing_row_mm = sr;
      info.pixel_spacing_col_mm = sc;
      break;
    }
  }
}

// Overlay planes (groups 6000-601E) are annotations, which dcmimgle would burn into the image.
void drop_overlays(DcmDataset* ds) {
  for (unsigned long i = ds->card(); i-- > 0;) {
    DcmElement* e = ds->getElement(i);
    const Uint16 group = e ? e->getGTag() : 0;
    if (group >= 0x6000 && group <= 0x601E && group % 2 == 0) delete ds->remove(i);
  }
}

// dcmimgle reports a failed decode only through its status; the kinds follow ours.
void check_decoded(const DicomImage& dimg, const Attributes& a, const std::string& name) {
  const EI_Status status = dimg.getStatus();
  if (status != EIS_Normal) {
    const char* text = DicomImage::getString(status);
    const std::string reason =
        std::string("cannot decode the pixel data: ") + (text ? text : "error");
    if (status == EIS_NotSupportedValue) fail(ErrorKind::kUnsupported, name, reason);
    if (status == EIS_MemoryFailure) fail(ErrorKind::kTooLarge, name, reason);
    fail(ErrorKind::kCorrupt, name, reason);
  }
  if (!dimg.isMonochrome() || dimg.getWidth() != static_cast<unsigned long>(a.cols) ||
      dimg.getHeight() != static_cast<unsigned long>(a.rows))
    fail(ErrorKind::kCorrupt, name, "decoded image does not match the header");
}

// The VOI the file asks for: its first window, else its first VOI LUT, else (nothing to go by) the
// min-max of the stored range. Returns how the image was windowed, for ImageInfo::window.
std::string apply_voi(DicomImage& dimg, DcmDataset* ds, const std::string& name) {
  double centre = 0, width = 0;
  if (get_double(ds, DCM_WindowCenter, 0, centre) && get_double(ds, DCM_WindowWidth, 0, width) &&
      width >= 1 && std::fabs(centre) < 1e12 && width < 1e12) {
    OFString func;
    ds->findAndGetOFString(DCM_VOILUTFunction, func);
    const std::string f = trim(func.c_str());
    dimg.setVoiLutFunction(f == "SIGMOID" ? EFV_Sigmoid : EFV_Linear);
    if (dimg.setWindow(centre, width)) {
      std::ostringstream os;
      os << "file VOI window c=" << centre << ",w=" << width;
      if (f == "SIGMOID") os << " (sigmoid)";
      return os.str();
    }
  }
  if (dimg.getVoiLutCount() > 0 && dimg.setVoiLut(0)) return "VOI LUT";
  if (!dimg.setMinMaxWindow(0))
    fail(ErrorKind::kCorrupt, name, "cannot compute the pixel value range");
  double lo = 0, hi = 0;
  dimg.getMinMaxValues(lo, hi);
  std::ostringstream os;
  os << "min-max of stored range [" << lo << "," << hi << "]";
  return os.str();
}

// Frame 0 rendered to 16 bits, then scaled to [0, 1].
std::vector<float> output_pixels(DicomImage& dimg, const Attributes& a, const std::string& name) {
  const size_t count = static_cast<size_t>(a.rows) * static_cast<size_t>(a.cols);
  if (dimg.getOutputDataSize(16) != count * sizeof(Uint16))
    fail(ErrorKind::kCorrupt, name, "unexpected rendered size");
  const auto* out = static_cast<const Uint16*>(dimg.getOutputData(16, 0, 0));
  if (!out) fail(ErrorKind::kCorrupt, name, "cannot render the pixel data");
  std::vector<float> pixels(count);
  constexpr float kScale = 1.0f / 65535.0f;
  for (size_t i = 0; i < count; ++i) pixels[i] = static_cast<float>(out[i]) * kScale;
  return pixels;
}

// dcmimgle applies the modality LUT / rescale, the VOI and the MONOCHROME1 polarity, the same way
// for every transfer syntax since JPEG 2000 is native by now.
void render(DcmDataset* ds, E_TransferSyntax image_xfer, const Attributes& a,
            const std::string& name, Image& image) {
  drop_overlays(ds);
  // Partial access: only frame 0 is decompressed and held, not the whole multi-frame pixel data.
  const unsigned long flags = CIF_UsePartialAccessToPixelData | CIF_NeverAccessEmbeddedOverlays;
  DicomImage dimg(ds, image_xfer, flags, 0, 1);
  check_decoded(dimg, a, name);
  // Polarity comes from the photometric interpretation alone (MONOCHROME1: inverted, bone bright):
  // a Presentation LUT Shape in the file (IDENTITY / INVERSE) would flip it again in dcmimgle.
  dimg.setPresentationLutShape(ESP_Default);
  image.info.window = apply_voi(dimg, ds, name);
  image.pixels = output_pixels(dimg, a, name);
}

Image decode_impl(const uint8_t* data, size_t size, const std::string& name,
                  const ReadLimits& limits) {
  ready_dcmtk(name);
  DcmFileFormat file;
  parse_file(data, size, name, limits, file);
  DcmDataset* ds = file.getDataset();

  Image image;
  image.info.format = "dicom";
  const Encoding enc = read_transfer_syntax(ds, file.getMetaInfo(), name, image.info);
  image.info.modality = read_modality(ds);
  Attributes a = read_attributes(ds);
  DcmElement* pixel_data = find_pixel_data(ds, name);
  check_attributes(ds, a, name, limits);
  read_frame_count(ds, a);
  check_rescale(ds, name);
  const E_TransferSyntax image_xfer = prepare_pixel_data(ds, pixel_data, enc, a, name);
  describe_image(ds, a, image.info);
  render(ds, image_xfer, a, name, image);
  return image;
}

// Runs fn on a thread with `stack_bytes` of stack; exceptions come back to the caller.
template <class Fn>
void run_with_stack(size_t stack_bytes, Fn& fn, const std::string& name) {
  struct Ctx {
    Fn* fn;
    std::exception_ptr error;
  } ctx{&fn, nullptr};
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) fail(ErrorKind::kTooLarge, name, "cannot create a decoder thread");
  const size_t page = 4096;
  stack_bytes = (stack_bytes + page - 1) / page * page;
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t thread;
  const int rc = pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        auto* c = static_cast<Ctx*>(p);
        try {
          (*c->fn)();
        } catch (...) {
          c->error = std::current_exception();
        }
        return nullptr;
      },
      &ctx);
  pthread_attr_destroy(&attr);
  if (rc != 0) fail(ErrorKind::kTooLarge, name, "cannot create a decoder thread for a deeply nested file");
  pthread_join(thread, nullptr);
  if (ctx.error) std::rethrow_exception(ctx.error);
}

}  // namespace

namespace {

// The size and item-count limits, then `work` on a stack sized for the nesting it may meet; every failure
// comes back as an ImageError naming the file.
template <class Work>
void guarded(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits, Work&& work) {
  if (!data || size == 0) throw ImageError(ErrorKind::kEmpty, name, "no data");
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(std::max<int64_t>(limits.max_file_bytes, 0)))
    throw ImageError(ErrorKind::kTooLarge, name, "file larger than the limit");
  try {
    const size_t items = count_item_tags(data, size);
    if (items > kMaxItemTags)
      throw ImageError(ErrorKind::kTooLarge, name, std::to_string(items) + " sequence items is too many");
    if (items <= kInlineItemTags) {
      work();
    } else {
      run_with_stack(kBaseStack + items * kStackPerLevel, work, name);
    }
  } catch (const ImageError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw ImageError(ErrorKind::kTooLarge, name, "out of memory while decoding");
  } catch (const std::exception& e) {
    throw ImageError(ErrorKind::kCorrupt, name, std::string("decoder error: ") + e.what());
  } catch (...) {
    throw ImageError(ErrorKind::kCorrupt, name, "decoder error");
  }
}

}  // namespace

Image decode_dicom(const uint8_t* data, size_t size, const std::string& name, const ReadLimits& limits) {
  Image result;
  guarded(data, size, name, limits, [&] { result = decode_impl(data, size, name, limits); });
  return result;
}

std::unique_ptr<DcmFileFormat> parse_dicom_header(const uint8_t* data, size_t size, const std::string& name,
                                                  const ReadLimits& limits, bool* had_pixel_data) {
  auto file = std::make_unique<DcmFileFormat>();
  guarded(data, size, name, limits, [&] {
    ready_dcmtk(name);
    parse_file(data, size, name, limits, *file);
    DcmDataset* ds = file->getDataset();
    // Pixel data stays behind (deferred values point into `data`); everything else is loaded now.
    bool pixels = false;
    for (const DcmTagKey& key : {DCM_PixelData, DCM_FloatPixelData, DCM_DoubleFloatPixelData}) {
      DcmElement* e = ds->remove(key);
      if (e && e->getLengthField() > 0) pixels = true;
      delete e;
    }
    if (had_pixel_data) *had_pixel_data = pixels;
    if (ds->loadAllDataIntoMemory().bad())
      fail(ErrorKind::kTruncated, name, "cannot load the header's values");
    if (file->getMetaInfo() && file->getMetaInfo()->loadAllDataIntoMemory().bad())
      fail(ErrorKind::kTruncated, name, "cannot load the meta header");
  });
  return file;
}

}  // namespace wristssl::io
