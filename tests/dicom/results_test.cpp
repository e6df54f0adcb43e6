// DICOM results (TID 1500 SR, Secondary Capture), their UIDs, the banner and the node's argument parsing.
// Conformance is checked by independent tools in dicom_check.sh (dciodvfy, DicomSRValidator, pydicom).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>
#include <string>

#include "../test_paths.h"
#include "wristssl/dicom/node.h"
#include "wristssl/dicom/results.h"
#include "wristssl/dicom/uid.h"
#include "wristssl/report/banner.h"
#include "wristssl/util/fs.h"

namespace wristssl::dicom {
namespace {

using testing::repo_path;
namespace fs = std::filesystem;

const char* kSample = "samples/dicom/pydicom_chrJapMulti_CR32x32.dcm";  // ISO 2022 Japanese names

ModelIdentity model(const std::string& hash = std::string(64, 'a')) {
  ModelIdentity m;
  m.name = "wrist-test";
  m.sha256 = hash;
  m.id = "wrist-test@" + hash.substr(0, 12);
  m.parameters = "threshold 0.5000";
  return m;
}

std::string str(DcmItem& ds, const DcmTagKey& key) {
  OFString v;
  ds.findAndGetOFStringArray(key, v);
  return v.c_str();
}

// The raw bytes of an element (to check a copy is exact whatever the character set); absent reads as
// empty (the type 2 attributes a source lacks are written empty).
std::string raw(DcmItem& ds, const DcmTagKey& key) {
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(key, e).bad() || !e) return "";
  char* s = nullptr;
  if (e->getString(s).bad() || !s) return "";
  return std::string(s, e->getLength());
}

report::Overlay picture(int w, int h) {
  report::Overlay o;
  o.width = w;
  o.height = h;
  o.rgb.assign(static_cast<size_t>(w) * h * 3, 40);
  return o;
}

__extension__ typedef unsigned __int128 u128;
u128 parse_decimal(const std::string& s) {
  u128 v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  return v;
}

TEST(Uid, DerivedUidsAreValidStableUuidsUnderTheRoot) {
  const std::string a = uid_for("x");
  EXPECT_TRUE(valid_uid(a)) << a;
  EXPECT_EQ(a, uid_for("x"));
  EXPECT_NE(a, uid_for("y"));
  ASSERT_EQ(a.rfind("2.25.", 0), 0u);
  EXPECT_LE(a.size(), 44u);
  const u128 v = parse_decimal(a.substr(5));
  EXPECT_EQ(static_cast<unsigned>((v >> 76) & 0xF), 8u);  // UUID version 8
  EXPECT_EQ(static_cast<unsigned>((v >> 62) & 0x3), 2u);  // RFC variant
  const std::string own = uid_for("x", "1.2.826.0.1.3680043.10.999");
  EXPECT_TRUE(valid_uid(own)) << own;
  EXPECT_EQ(own.size(), 64u);  // as many digits as fit
  EXPECT_THROW(uid_for("x", "1.02.3"), std::invalid_argument);
  EXPECT_THROW(uid_for("x", std::string(50, '1')), std::invalid_argument);
}

TEST(Uid, Validity) {
  EXPECT_TRUE(valid_uid("1.2.840.10008.1.2"));
  EXPECT_TRUE(valid_uid("2.25.0"));
  EXPECT_FALSE(valid_uid(""));
  EXPECT_FALSE(valid_uid("1..2"));
  EXPECT_FALSE(valid_uid("1.2."));
  EXPECT_FALSE(valid_uid("1.02"));
  EXPECT_FALSE(valid_uid("1.2a"));
  EXPECT_FALSE(valid_uid(std::string(65, '1')));
}

TEST(Results, ReportCopiesTheContextAndFollowsTid1500) {
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  EXPECT_FALSE(src.has_pixel_data);  // this sample is a header only
  EXPECT_TRUE(SourceInstance::read(repo_path("samples/dicom/CR-MONO1-10-chest.dcm")).has_pixel_data);
  auto file = make_report(src, {0.873, "fracture", {}}, model());
  DcmDataset& ds = *file->getDataset();
  DcmDataset& in = src.dataset();
  EXPECT_EQ(str(ds, DCM_SOPClassUID), UID_Comprehensive3DSRStorage);
  for (const DcmTagKey& key : {DCM_SpecificCharacterSet, DCM_PatientName, DCM_PatientID, DCM_PatientBirthDate,
                               DCM_PatientSex, DCM_StudyInstanceUID, DCM_StudyDate, DCM_StudyTime,
                               DCM_AccessionNumber, DCM_StudyID, DCM_ReferringPhysicianName})
    EXPECT_EQ(raw(ds, key), raw(in, key)) << DcmTag(key).getTagName();
  EXPECT_NE(str(ds, DCM_SeriesInstanceUID), src.series_uid);
  EXPECT_TRUE(valid_uid(str(ds, DCM_SeriesInstanceUID)));
  EXPECT_EQ(str(ds, DCM_SOPInstanceUID), report_uid(src, model(), "2.25"));
  EXPECT_EQ(str(ds, DCM_VerificationFlag), "UNVERIFIED");
  EXPECT_EQ(str(ds, DCM_CompletionFlag), "COMPLETE");
  DcmItem* item = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ContentTemplateSequence, item).good());
  EXPECT_EQ(str(*item, DCM_TemplateIdentifier), "1500");
  EXPECT_EQ(str(*item, DCM_MappingResource), "DCMR");
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ContributingEquipmentSequence, item).good());
  EXPECT_EQ(str(*item, DCM_Manufacturer), "wristssl");
  // Evidence names the analysed instance.
  DcmItem* study = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_CurrentRequestedProcedureEvidenceSequence, study).good());
  EXPECT_EQ(str(*study, DCM_StudyInstanceUID), src.study_uid);
  DcmItem* series = nullptr;
  ASSERT_TRUE(study->findAndGetSequenceItem(DCM_ReferencedSeriesSequence, series).good());
  DcmItem* inst = nullptr;
  ASSERT_TRUE(series->findAndGetSequenceItem(DCM_ReferencedSOPSequence, inst).good());
  EXPECT_EQ(str(*inst, DCM_ReferencedSOPInstanceUID), src.sop_instance_uid);

  // The content tree, read back by DCMTK's SR reader.
  DSRDocument doc;
  ASSERT_TRUE(doc.read(ds).good());
  DSRDocumentTree& t = doc.getTree();
  ASSERT_GT(t.gotoNamedNode(DSRCodedEntryValue("125007", "DCM", "Measurement Group")), 0u);
  ASSERT_GT(t.gotoNamedNode(DSRCodedEntryValue("WSSL-PFX", "99WRISTSSL", "Probability of fracture")), 0u);
  EXPECT_EQ(std::string(t.getCurrentContentItem().getNumericValue().getNumericValue().c_str()), "0.873000");
  t.gotoRoot();
  ASSERT_GT(t.gotoNamedNode(DSRCodedEntryValue("72704001", "SCT", "Fracture")), 0u);  // the qualitative evaluation
  EXPECT_EQ(std::string(t.getCurrentContentItem().getCodeValue().getCodeValue().c_str()), "52101004");  // present
  t.gotoRoot();
  ASSERT_GT(t.gotoNamedNode(DSRCodedEntryValue("111003", "DCM", "Algorithm Version")), 0u);
  EXPECT_EQ(std::string(t.getCurrentContentItem().getStringValue().c_str()), "sha256:" + std::string(64, 'a'));
}

TEST(Results, EachRegionIsAPlanarRoiGroupWithAClosedPolylineOnTheSource) {
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  Finding f{0.81, "fracture", {}};
  f.regions.push_back({100, 200, 160, 250, 0.83, "fracture"});
  f.regions.push_back({300, 40, 330, 90, 0.52, "refer"});
  auto file = make_report(src, f, model());
  DSRDocument doc;
  ASSERT_TRUE(doc.read(*file->getDataset()).good());
  DSRDocumentTree& t = doc.getTree();
  // Three measurement groups: the image's and one per region, each with its tracking identifier.
  std::vector<std::string> ids;
  for (size_t node = t.gotoNamedNode(DSRCodedEntryValue("112039", "DCM", "Tracking Identifier"));
       node > 0;
       node = t.gotoNextNamedNode(DSRCodedEntryValue("112039", "DCM", "Tracking Identifier")))
    ids.push_back(t.getCurrentContentItem().getStringValue().c_str());
  EXPECT_EQ(ids, (std::vector<std::string>{"wrist fracture", "wrist fracture region 1",
                                           "wrist fracture region 2"}));
  t.gotoRoot();
  std::vector<std::vector<float>> polylines;
  std::vector<std::string> selected_from;
  for (size_t node = t.gotoNamedNode(DSRCodedEntryValue("111030", "DCM", "Image Region")); node > 0;
       node = t.gotoNextNamedNode(DSRCodedEntryValue("111030", "DCM", "Image Region"))) {
    DSRSpatialCoordinatesValue* v = t.getCurrentContentItem().getSpatialCoordinatesPtr();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->getGraphicType(), DSRTypes::GT_Polyline);
    std::vector<float> xy;
    for (size_t k = 1; k <= v->getGraphicDataList().getNumberOfItems(); ++k) {
      float x = 0, y = 0;
      ASSERT_TRUE(v->getGraphicDataList().getItem(k, x, y).good());
      xy.push_back(x), xy.push_back(y);
    }
    polylines.push_back(xy);
    // Its one child: SELECTED FROM the analysed image.
    ASSERT_TRUE(t.goDown() > 0);
    EXPECT_EQ(t.getCurrentContentItem().getRelationshipType(), DSRTypes::RT_selectedFrom);
    selected_from.push_back(
        t.getCurrentContentItem().getImageReferencePtr()->getSOPInstanceUID().c_str());
    t.goUp();
  }
  ASSERT_EQ(polylines.size(), 3u);
  // Closed: five points, the last the first; corners in DICOM's image-relative pixels. The
  // image-level group's region is the whole 32 x 32 image.
  EXPECT_EQ(polylines[0], (std::vector<float>{0, 0, 32, 0, 32, 32, 0, 32, 0, 0}));
  EXPECT_EQ(polylines[1], (std::vector<float>{100, 200, 160, 200, 160, 250, 100, 250, 100, 200}));
  EXPECT_EQ(polylines[2][2], 330.0f);
  EXPECT_EQ(selected_from, std::vector<std::string>(3, src.sop_instance_uid));
  // The region's evaluation: present in the fracture band, indeterminate in the refer band.
  t.gotoRoot();
  std::vector<std::string> evaluations;
  for (size_t node = t.gotoNamedNode(DSRCodedEntryValue("72704001", "SCT", "Fracture")); node > 0;
       node = t.gotoNextNamedNode(DSRCodedEntryValue("72704001", "SCT", "Fracture")))
    evaluations.push_back(t.getCurrentContentItem().getCodeValue().getCodeValue().c_str());
  EXPECT_EQ(evaluations, (std::vector<std::string>{"52101004", "52101004", "82334004"}));
  // A region that is no box, or of no band, is refused with the file named.
  Finding bad = f;
  bad.regions[1] = {10, 10, 5, 20, 0.5, "refer"};
  EXPECT_THROW(make_report(src, bad, model()), DicomError);
  bad.regions[1] = {10, 10, 50, 20, 0.5, "no_fracture"};
  EXPECT_THROW(make_report(src, bad, model()), DicomError);
}

TEST(Results, DecisionsMapToPresentAbsentIndeterminate) {
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  const std::pair<const char*, const char*> cases[] = {
      {"fracture", "52101004"}, {"no_fracture", "2667000"}, {"refer", "82334004"}};
  for (const auto& [decision, code] : cases) {
    auto file = make_report(src, {0.5, decision, {}}, model());
    DSRDocument doc;
    ASSERT_TRUE(doc.read(*file->getDataset()).good());
    ASSERT_GT(doc.getTree().gotoNamedNode(DSRCodedEntryValue("72704001", "SCT", "Fracture")), 0u);
    EXPECT_EQ(std::string(doc.getTree().getCurrentContentItem().getCodeValue().getCodeValue().c_str()), code)
        << decision;
  }
  EXPECT_THROW(make_report(src, {0.5, "maybe", {}}, model()), DicomError);
  EXPECT_THROW(make_report(src, {1.5, "fracture", {}}, model()), DicomError);
}

TEST(Results, SecondaryCaptureIsDerivedWithBannerAndSource) {
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  auto file = make_secondary_capture(src, {0.2, "no_fracture", {}}, model(), picture(300, 200));
  DcmDataset& ds = *file->getDataset();
  EXPECT_EQ(str(ds, DCM_SOPClassUID), UID_SecondaryCaptureImageStorage);
  EXPECT_EQ(str(ds, DCM_ImageType), "DERIVED\\SECONDARY");
  EXPECT_EQ(str(ds, DCM_BurnedInAnnotation), "YES");
  EXPECT_EQ(str(ds, DCM_PhotometricInterpretation), "RGB");
  EXPECT_EQ(raw(ds, DCM_PatientName), raw(src.dataset(), DCM_PatientName));
  EXPECT_EQ(str(ds, DCM_StudyInstanceUID), src.study_uid);
  EXPECT_NE(str(ds, DCM_SeriesInstanceUID), src.series_uid);
  for (const DcmTagKey& key : {DCM_RescaleSlope, DCM_RescaleIntercept, DCM_WindowCenter, DCM_WindowWidth})
    EXPECT_FALSE(ds.tagExists(key)) << DcmTag(key).getTagName();
  Uint16 rows = 0, cols = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  EXPECT_EQ(cols, 300);
  EXPECT_GT(rows, 200);  // the banner on top
  DcmItem* item = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_SourceImageSequence, item).good());
  EXPECT_EQ(str(*item, DCM_ReferencedSOPInstanceUID), src.sop_instance_uid);
  EXPECT_EQ(str(*item, DCM_ReferencedSOPClassUID), src.sop_class_uid);
  const std::vector<std::string> banner = banner_text({0.2, "no_fracture", {}}, model());
  ASSERT_EQ(banner.size(), 4u);
  EXPECT_EQ(banner[0], "NO FRACTURE FOUND  P(fracture) 20%");
  EXPECT_EQ(banner[1], "AI: wrist-test@aaaaaaaaaaaa");
  EXPECT_EQ(banner[3], "RESEARCH USE ONLY - NOT FOR DIAGNOSTIC USE");
  ModelIdentity clinical = model();
  clinical.research_only = false;
  EXPECT_EQ(banner_text({0.2, "no_fracture", {}}, clinical).size(), 3u);
  // A finding with a region says what the box means.
  Finding boxed{0.8, "fracture", {{1, 2, 30, 40, 0.85, "fracture"}}};
  const std::vector<std::string> b2 = banner_text(boxed, clinical);
  ASSERT_EQ(b2.size(), 4u);
  EXPECT_EQ(b2[3], "White box: where the AI places the fracture");
}

TEST(Results, WritingAgainReplacesWithTheSameUids) {
  const std::string dir = testing::temp_dir("dicom-results");
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  const ResultFiles a = write_results(src, {0.7, "fracture", {}}, model(), picture(64, 64), dir);
  const ResultFiles b = write_results(src, {0.7, "fracture", {}}, model(), picture(64, 64), dir);
  EXPECT_EQ(a.report_uid, b.report_uid);
  EXPECT_EQ(a.secondary_capture_uid, b.secondary_capture_uid);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 2u);  // no temporaries left, nothing duplicated
  const ResultFiles c =
      write_results(src, {0.7, "fracture", {}}, model(std::string(64, 'b')), picture(64, 64), dir);
  EXPECT_NE(c.report_uid, a.report_uid);  // another model: other objects
  EXPECT_EQ(c.report, a.report);  // one result per image in a folder: the latest model's
  DcmFileFormat back;
  ASSERT_TRUE(back.loadFile(c.report.c_str()).good());
  EXPECT_EQ(str(*back.getMetaInfo(), DCM_MediaStorageSOPInstanceUID), c.report_uid);
  EXPECT_EQ(str(*back.getDataset(), DCM_SOPInstanceUID), c.report_uid);
}

// The bytes written atomically are DCMTK's own file: the same as saveFile's, byte for byte (large enough
// that the in-memory stream hands over its buffer several times).
TEST(Results, SavedBytesAreDcmtksFile) {
  const SourceInstance src = SourceInstance::read(repo_path(kSample));
  auto sc = make_secondary_capture(src, {0.7, "fracture", {}}, model(), picture(1000, 800));
  const std::string dir = testing::temp_dir("dicom-bytes");
  ASSERT_TRUE(sc->saveFile((dir + "/dcmtk.dcm").c_str(), EXS_LittleEndianExplicit, EET_UndefinedLength, EGL_recalcGL,
                           EPD_noChange, 0, 0, EWM_createNewMeta)
                  .good());
  save_atomically(*sc, dir + "/ours.dcm");
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string a = read(dir + "/dcmtk.dcm"), b = read(dir + "/ours.dcm");
  EXPECT_GT(a.size(), 3u * (1u << 20));
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
}

TEST(Results, SourcesThatCannotHaveResultsAreNamed) {
  const std::string png = repo_path("samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png");
  try {
    SourceInstance::read(png);
    FAIL() << "a PNG was accepted";
  } catch (const DicomError& e) {
    EXPECT_NE(std::string(e.what()).find(png), std::string::npos) << e.what();
  }
  // A data set without a Study Instance UID.
  DcmFileFormat f;
  ASSERT_TRUE(f.loadFile(repo_path(kSample).c_str()).good());
  delete f.getDataset()->remove(DCM_StudyInstanceUID);
  const std::string path = testing::temp_dir("dicom-nostudy") + "/x.dcm";
  ASSERT_TRUE(f.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  try {
    SourceInstance::read(path);
    FAIL() << "no study UID was accepted";
  } catch (const DicomError& e) {
    EXPECT_NE(std::string(e.what()).find("Study Instance UID"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// The node parses what it receives with this code: a length field that asks for gigabytes must fail fast,
// naming the file, not allocate (the DCMTK trap noted in DEVELOPERS.md).
TEST(Results, AHostileLengthIsRefusedWithoutAllocatingIt) {
  std::ifstream in(repo_path("samples/dicom/CR-MONO1-10-chest.dcm"), std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const uint8_t patient_name[] = {0x10, 0x00, 0x10, 0x00};  // implicit VR little endian: tag, then 4-byte length
  auto at = std::search(bytes.begin(), bytes.end(), std::begin(patient_name), std::end(patient_name));
  ASSERT_NE(at, bytes.end());
  const size_t pos = static_cast<size_t>(at - bytes.begin()) + 4;
  const uint32_t huge = 0xF0000000u;  // 3.75 GiB
  std::memcpy(&bytes[pos], &huge, 4);
  try {
    SourceInstance::parse(bytes, "hostile.dcm");
    FAIL() << "a hostile length was accepted";
  } catch (const DicomError& e) {
    EXPECT_NE(std::string(e.what()).find("hostile.dcm"), std::string::npos) << e.what();
  }
}

TEST(Banner, TextIsDrawnClippedAndTruncated) {
  report::Overlay o = picture(100, 40);
  std::fill(o.rgb.begin(), o.rgb.end(), 0);
  report::draw_text(o, 2, 2, "I", 1, {255, 0, 0});
  size_t red = 0;
  for (size_t i = 0; i < o.rgb.size(); i += 3) red += o.rgb[i] == 255 ? 1 : 0;
  EXPECT_GT(red, 10u);  // the stroke of an I
  EXPECT_LT(red, 12u * 24u);
  report::draw_text(o, 95, 30, "WWW", 2, {0, 255, 0});  // clipped, no crash
  EXPECT_EQ(report::text_width("abc", 2), 72);
  const report::Overlay b = report::add_banner(picture(1000, 500), {{"one line", {255, 255, 255}}});
  EXPECT_EQ(b.width, 1000);
  EXPECT_EQ(b.height, 500 + 2 * 12 + 52);  // scale 2: margins 2 x 12 px, one line of 2 x 24 + 4 px
  // 400 px holds (400 - 12) / 12 = 32 characters a row: 70 characters in words of 9 wrap to 3 rows.
  std::string words;
  for (int i = 0; i < 7; ++i) words += (i ? " " : "") + std::string(9, 'w');
  EXPECT_EQ(words.size(), 69u);
  const report::Overlay c = report::add_banner(picture(400, 100), {{words, {255, 255, 255}}});
  EXPECT_EQ(c.height, 100 + 2 * 6 + 3 * 26);
}

TEST(Node, DestinationsAreParsed) {
  const Destination d = parse_destination("pacs.example.org:104:ORTHANC");
  EXPECT_EQ(d.host, "pacs.example.org");
  EXPECT_EQ(d.port, 104);
  EXPECT_EQ(d.aet, "ORTHANC");
  for (const char* bad : {"pacs:104", "pacs:0:AE", "pacs:70000:AE", ":104:AE", "pacs:104:", "pacs:x:AE",
                          "pacs:104:AE:extra", "pacs:104:SEVENTEEN_CHARS_AE"})
    EXPECT_THROW(parse_destination(bad), std::invalid_argument) << bad;
  EXPECT_EQ(instance_tag("1.2.3").size(), 10u);
  EXPECT_NE(instance_tag("1.2.3"), instance_tag("1.2.4"));
}

TEST(Node, WhoMaySend) {
  // No allowlist: loopback callers only, whatever their AE title.
  EXPECT_TRUE(peer_allowed({}, "ANY", "127.0.0.1"));
  EXPECT_TRUE(peer_allowed({}, "ANY", "127.0.0.1:40000"));
  EXPECT_TRUE(peer_allowed({}, "ANY", "::1"));
  EXPECT_TRUE(peer_allowed({}, "ANY", "::ffff:127.0.0.1"));
  EXPECT_FALSE(peer_allowed({}, "ANY", "10.1.2.3"));
  EXPECT_FALSE(peer_allowed({}, "ANY", "128.0.0.1"));
  // An AE title from anywhere, and one from one host only.
  const std::vector<Peer> allow = {parse_peer("MODALITY"),
                                   resolve_peer(parse_peer("ROUTER@127.0.0.2"))};
  EXPECT_EQ(allow[1].addresses, (std::vector<std::string>{"127.0.0.2"}));
  EXPECT_TRUE(peer_allowed(allow, "MODALITY", "10.1.2.3"));
  EXPECT_TRUE(peer_allowed(allow, "ROUTER", "127.0.0.2"));
  EXPECT_FALSE(peer_allowed(allow, "ROUTER", "127.0.0.1"));  // another host
  EXPECT_FALSE(
      peer_allowed(allow, "STRANGER", "127.0.0.1"));  // an allowlist replaces the loopback rule
  EXPECT_FALSE(peer_allowed(allow, "modality", "10.1.2.3"));  // AE titles are matched exactly
  // Bad entries are named.
  for (const char* bad : {"", "@host", "AE@", "SEVENTEEN_CHARS_AE", "A\\B"})
    EXPECT_THROW(parse_peer(bad), std::invalid_argument) << bad;
  // Hosts are resolved once, at start, to numeric addresses (a literal resolves to itself; no test
  // relies on a name, since a fresh root may have no /etc/hosts entry even for localhost).
  const Peer literal = resolve_peer(parse_peer("LOCAL@127.0.0.3"));
  EXPECT_EQ(literal.addresses, (std::vector<std::string>{"127.0.0.3"}));
  EXPECT_TRUE(peer_allowed({literal}, "LOCAL", "127.0.0.3:4242"));
}

TEST(Node, PeersFile) {
  const std::string dir = testing::temp_dir("peers");
  auto write = [&](const std::string& text) {
    util::atomic_write(dir + "/peers.json", text);
    return dir + "/peers.json";
  };
  EXPECT_EQ(read_peers_file(write(R"({"allow": ["MODALITY1", "ROUTER@10.0.0.5"]})")),
            (std::vector<std::string>{"MODALITY1", "ROUTER@10.0.0.5"}));
  EXPECT_TRUE(read_peers_file(write(R"({"allow": []})")).empty());
  auto refused = [&](const std::string& path, const std::string& want) {
    try {
      read_peers_file(path);
      ADD_FAILURE() << "accepted: " << path;
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(want), std::string::npos) << m;
    }
  };
  refused(dir + "/missing.json", "cannot be read");
  refused(write("{allow"), "not JSON");
  refused(write(R"(["MODALITY1"])"), "expected {");
  refused(write(R"({"allow": ["OK", 7]})"), "allow[1] is not a string");
  refused(write(R"({"allow": ["OK", "AE@"]})"), "allow[1]: --allow 'AE@': no host after '@'");
}

}  // namespace
}  // namespace wristssl::dicom
