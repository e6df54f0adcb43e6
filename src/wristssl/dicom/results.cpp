#include "wristssl/dicom/results.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcwcache.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "wristssl/dicom/uid.h"
#include "wristssl/io/dicom_header.h"
#include "wristssl/io/read_image.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/report/banner.h"
#include "wristssl/util/fs.h"
#include "wristssl/version.h"

namespace wristssl::dicom {
namespace {

namespace fs = std::filesystem;

// Patient, General Study, Patient Study and Clinical Trial attributes: copied exactly from the source.
const DcmTagKey kCopied[] = {
    DCM_SpecificCharacterSet,
    // Patient
    DCM_PatientName, DCM_PatientID, DCM_IssuerOfPatientID, DCM_IssuerOfPatientIDQualifiersSequence,
    DCM_TypeOfPatientID, DCM_PatientBirthDate, DCM_PatientBirthTime, DCM_PatientSex, DCM_OtherPatientIDsSequence,
    DCM_OtherPatientNames, DCM_EthnicGroup, DCM_PatientComments, DCM_PatientSpeciesDescription,
    DCM_PatientSpeciesCodeSequence, DCM_PatientBreedDescription, DCM_PatientBreedCodeSequence,
    DCM_BreedRegistrationSequence, DCM_ResponsiblePerson, DCM_ResponsiblePersonRole,
    DCM_ResponsibleOrganization, DCM_PatientIdentityRemoved, DCM_DeidentificationMethod,
    DCM_DeidentificationMethodCodeSequence, DCM_ReferencedPatientSequence, DCM_QualityControlSubject,
    // General Study
    DCM_StudyInstanceUID, DCM_StudyDate, DCM_StudyTime, DCM_ReferringPhysicianName,
    DCM_ReferringPhysicianIdentificationSequence, DCM_ConsultingPhysicianName, DCM_StudyID, DCM_AccessionNumber,
    DCM_IssuerOfAccessionNumberSequence, DCM_StudyDescription, DCM_PhysiciansOfRecord,
    DCM_NameOfPhysiciansReadingStudy, DCM_ProcedureCodeSequence, DCM_ReasonForPerformedProcedureCodeSequence,
    DCM_ReferencedStudySequence,
    // Patient Study
    DCM_AdmittingDiagnosesDescription, DCM_PatientAge, DCM_PatientSize, DCM_PatientWeight,
    DCM_PatientSexNeutered, DCM_AdditionalPatientHistory, DCM_AdmissionID, DCM_IssuerOfAdmissionIDSequence,
    // Clinical Trial Subject and Study
    DCM_ClinicalTrialSponsorName, DCM_ClinicalTrialProtocolID, DCM_ClinicalTrialProtocolName,
    DCM_ClinicalTrialSiteID, DCM_ClinicalTrialSiteName, DCM_ClinicalTrialSubjectID,
    DCM_ClinicalTrialSubjectReadingID, DCM_ClinicalTrialTimePointID, DCM_ClinicalTrialTimePointDescription,
};
// Type 2 attributes of those modules: present (empty) even when the source lacks them.
const DcmTagKey kType2[] = {DCM_PatientName,   DCM_PatientID, DCM_PatientBirthDate, DCM_PatientSex,
                            DCM_StudyDate,     DCM_StudyTime, DCM_ReferringPhysicianName, DCM_StudyID,
                            DCM_AccessionNumber};

constexpr const char* kManufacturer = "wristssl";
constexpr const char* kPrivateScheme = "99WRISTSSL";

void check(const OFCondition& c, const std::string& what) {
  if (c.bad()) throw DicomError("cannot build the result: " + what + ": " + c.text());
}

// Text for DICOM strings: printable ASCII (valid in every character set a source may declare).
std::string ascii(const std::string& s, size_t max = 64) {
  std::string out;
  for (unsigned char c : s) out.push_back(c >= 32 && c < 127 && c != '\\' ? static_cast<char>(c) : '?');
  if (out.size() > max) out.resize(max);
  return out;
}

std::string now(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

void copy_context(DcmDataset& from, DcmDataset& to) {
  for (const DcmTagKey& key : kCopied) {
    DcmElement* e = nullptr;
    if (from.findAndGetElement(key, e).good() && e) {
      check(to.insert(static_cast<DcmElement*>(e->clone()), OFTrue), "copy " + std::string(DcmTag(key).getTagName()));
    } else {
      delete to.remove(key);
    }
  }
  for (const DcmTagKey& key : kType2)
    if (!to.tagExists(key)) check(to.insertEmptyElement(key), "empty " + std::string(DcmTag(key).getTagName()));
}

// Laterality of the new series: the source's series or image laterality (R or L) when it has one.
void copy_laterality(DcmDataset& from, DcmDataset& to) {
  std::string lat = attribute(from, DCM_Laterality);
  if (lat.empty()) lat = attribute(from, DCM_ImageLaterality);
  if (lat == "R" || lat == "L") check(to.putAndInsertString(DCM_Laterality, lat.c_str()), "Laterality");
  const std::string part = attribute(from, DCM_BodyPartExamined);
  if (!part.empty()) check(to.putAndInsertString(DCM_BodyPartExamined, part.c_str()), "BodyPartExamined");
}

void add_code(DcmItem& item, const char* value, const char* scheme, const char* meaning) {
  check(item.putAndInsertString(DCM_CodeValue, value), "CodeValue");
  check(item.putAndInsertString(DCM_CodingSchemeDesignator, scheme), "CodingSchemeDesignator");
  check(item.putAndInsertString(DCM_CodeMeaning, meaning), "CodeMeaning");
}

// The Contributing Equipment Sequence (SOP Common; required by the IHE AI Results profile).
void add_contributing_equipment(DcmDataset& ds, const ModelIdentity& model) {
  DcmItem* item = nullptr;
  check(ds.findOrCreateSequenceItem(DCM_ContributingEquipmentSequence, item, -2), "ContributingEquipmentSequence");
  check(item->putAndInsertString(DCM_Manufacturer, kManufacturer), "Manufacturer");
  check(item->putAndInsertString(DCM_ManufacturerModelName, ascii(model.name).c_str()), "ManufacturerModelName");
  check(item->putAndInsertString(DCM_SoftwareVersions, wristssl::kVersion), "SoftwareVersions");
  check(item->putAndInsertString(DCM_ContributionDateTime, now("%Y%m%d%H%M%S").c_str()), "ContributionDateTime");
  check(item->putAndInsertString(DCM_ContributionDescription,
                                 ascii("Fracture detection by " + model.id, 64).c_str()),
        "ContributionDescription");
  DcmItem* purpose = nullptr;
  check(item->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, purpose, -2), "PurposeOfReference");
  add_code(*purpose, "109102", "DCM", "Processing Equipment");
}

std::string series_uid(const SourceInstance& s, const ModelIdentity& m, const char* kind, const std::string& root) {
  return uid_for(std::string("wristssl/series/") + kind + "/" + s.study_uid + "/" + m.sha256, root);
}

DSRCodedEntryValue code(const char* value, const char* scheme, const char* meaning) {
  return DSRCodedEntryValue(value, scheme, meaning);
}

// The one place a decision selects among three: anything but "fracture" and "no_fracture" reads as
// "refer" (the banner shows an unknown decision as uncertain; the report refuses it itself).
template <typename V>
V by_decision(const std::string& decision, V fracture, V no_fracture, V refer) {
  return decision == "fracture" ? fracture : decision == "no_fracture" ? no_fracture : refer;
}

}  // namespace

std::string attribute(DcmItem& item, const DcmTagKey& key) {
  OFString v;
  if (item.findAndGetOFStringArray(key, v).bad()) return "";
  std::string s = v.c_str();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

bool is_wristssl_result(DcmItem& ds) {
  return attribute(ds, DCM_Manufacturer) == kManufacturer && attribute(ds, DCM_ImageType).rfind("DERIVED", 0) == 0;
}

// ---------------------------------------------------------------------------------------------------------
// The source

SourceInstance SourceInstance::parse(const std::vector<uint8_t>& bytes, const std::string& name) {
  SourceInstance s;
  s.name_ = name;
  try {
    s.file_ = io::parse_dicom_header(bytes.data(), bytes.size(), name, {}, &s.has_pixel_data);
  } catch (const io::ImageError& e) {
    throw DicomError(name + ": not a readable DICOM data set: " + e.reason());
  }
  DcmDataset& ds = s.dataset();
  s.sop_class_uid = attribute(ds, DCM_SOPClassUID);
  s.sop_instance_uid = attribute(ds, DCM_SOPInstanceUID);
  s.study_uid = attribute(ds, DCM_StudyInstanceUID);
  s.series_uid = attribute(ds, DCM_SeriesInstanceUID);
  s.modality = attribute(ds, DCM_Modality);
  // Results reference these UIDs exactly, so they must be valid: an object referencing a malformed UID
  // (real archives hold some, e.g. with leading zeros) would itself be invalid.
  auto need = [&](const std::string& uid, const char* what) {
    if (uid.empty()) throw DicomError(name + ": no " + what);
    if (!valid_uid(uid))
      throw DicomError(name + ": its " + what + " '" + uid + "' is not a valid UID, so no result can reference it");
  };
  need(s.sop_class_uid, "SOP Class UID");
  need(s.sop_instance_uid, "SOP Instance UID");
  need(s.study_uid, "Study Instance UID");
  return s;
}

SourceInstance SourceInstance::read(const std::string& path) {
  std::vector<uint8_t> bytes;
  try {
    bytes = io::read_file_bytes(path);
  } catch (const io::ImageError& e) {
    throw DicomError(path + ": " + e.reason());
  }
  return parse(bytes, path);
}

// ---------------------------------------------------------------------------------------------------------
// UIDs

std::string report_uid(const SourceInstance& s, const ModelIdentity& m, const std::string& root) {
  return uid_for("wristssl/sr/" + s.sop_instance_uid + "/" + m.sha256, root);
}

std::string secondary_capture_uid(const SourceInstance& s, const ModelIdentity& m, const std::string& root) {
  return uid_for("wristssl/sc/" + s.sop_instance_uid + "/" + m.sha256, root);
}

// ---------------------------------------------------------------------------------------------------------
// The structured report

namespace {

// A failed step names the concept, so that a message tells which of the many items it was.
DSRContentItem* add_item(DSRDocumentTree& t, DSRTypes::E_RelationshipType rel,
                         DSRTypes::E_ValueType type, const DSRCodedEntryValue& concept,
                         bool child) {
  const OFCondition c =
      child ? t.addChildContentItem(rel, type, concept) : t.addContentItem(rel, type, concept);
  check(c, "content item " + std::string(concept.getCodeMeaning().c_str()));
  return &t.getCurrentContentItem();
}

// An IMAGE item referencing the analysed instance, placed by `mode`. This addContentItem returns a
// node id (0: not added), not a condition, hence the conversion.
void add_source_image(DSRDocumentTree& t, const SourceInstance& source, DSRTypes::E_AddMode mode,
                      const char* entry, const char* reference,
                      DSRTypes::E_RelationshipType relation = DSRTypes::RT_contains) {
  check(t.addContentItem(relation, DSRTypes::VT_Image, mode) ? EC_Normal : EC_IllegalCall, entry);
  check(t.getCurrentContentItem().setImageReference(
            DSRImageReferenceValue(source.sop_class_uid.c_str(), source.sop_instance_uid.c_str())),
        reference);
}

// TID 1500's root with its language (TID 1204), observer (TID 1001 / 1002 / 1004: a device, the
// model) and procedure reported.
void add_report_root(DSRDocumentTree& t, const ModelIdentity& model, const std::string& uid_root) {
  using T = DSRTypes;
  check(t.addContentItem(T::RT_isRoot, T::VT_Container, code("126000", "DCM", "Imaging Measurement Report")),
        "root");
  check(t.setTemplateIdentification("1500", "DCMR"), "template identification");
  check(add_item(t, T::RT_hasConceptMod, T::VT_Code,
                 code("121049", "DCM", "Language of Content Item and Descendants"), true)
            ->setCodeValue(code("en-US", "RFC5646", "English (United States)")),
        "language");
  check(add_item(t, T::RT_hasObsContext, T::VT_Code, code("121005", "DCM", "Observer Type"), false)
            ->setCodeValue(code("121007", "DCM", "Device")),
        "observer type");
  check(add_item(t, T::RT_hasObsContext, T::VT_UIDRef, code("121012", "DCM", "Device Observer UID"),
                 false)
            ->setStringValue(uid_for("wristssl/device/" + model.sha256, uid_root).c_str()),
        "device observer UID");
  check(add_item(t, T::RT_hasObsContext, T::VT_Text, code("121013", "DCM", "Device Observer Name"),
                 false)
            ->setStringValue(ascii(model.id).c_str()),
        "device observer name");
  check(add_item(t, T::RT_hasObsContext, T::VT_Text,
                 code("121014", "DCM", "Device Observer Manufacturer"), false)
            ->setStringValue(kManufacturer),
        "device observer manufacturer");
  check(add_item(t, T::RT_hasObsContext, T::VT_Text,
                 code("121015", "DCM", "Device Observer Model Name"), false)
            ->setStringValue(ascii(model.name).c_str()),
        "device observer model name");
  check(add_item(t, T::RT_hasConceptMod, T::VT_Code, code("121058", "DCM", "Procedure reported"),
                 false)
            ->setCodeValue(code("363679005", "SCT", "Imaging procedure")),  // from CID 100
        "procedure reported");
}

// TID 1600 image library: the analysed image. Leaves the current item at the library, so that the
// measurements follow it on the root's level.
void add_image_library(DSRDocumentTree& t, const SourceInstance& source) {
  using T = DSRTypes;
  add_item(t, T::RT_contains, T::VT_Container, code("111028", "DCM", "Image Library"), false);
  add_item(t, T::RT_contains, T::VT_Container, code("126200", "DCM", "Image Library Group"), true);
  add_source_image(t, source, T::AM_belowCurrent, "image library entry", "image library reference");
  t.goUp();
  t.goUp();
}

// An "Image Region" SCOORD: the closed polyline around the pixel rectangle [x0, x1] x [y0, y1]
// (DICOM's image-relative coordinates), SELECTED FROM the analysed image. Leaves the current item
// at the SCOORD.
void add_image_region(DSRDocumentTree& t, const SourceInstance& source, double x0, double y0,
                      double x1, double y1, const char* what) {
  using T = DSRTypes;
  add_item(t, T::RT_contains, T::VT_SCoord, code("111030", "DCM", "Image Region"), false);
  DSRSpatialCoordinatesValue region(T::GT_Polyline);
  const double xs[5] = {x0, x1, x1, x0, x0}, ys[5] = {y0, y0, y1, y1, y0};
  for (int p = 0; p < 5; ++p)
    region.getGraphicDataList().addItem(static_cast<float>(xs[p]), static_cast<float>(ys[p]));
  check(t.getCurrentContentItem().setSpatialCoordinates(region), what);
  add_source_image(t, source, T::AM_belowCurrent, what, what, T::RT_selectedFrom);
  t.goUp();
}

// The source's size in pixels from its header, or {0, 0} when it does not say.
std::pair<int, int> source_size(const SourceInstance& source) {
  Uint16 rows = 0, cols = 0;
  source.dataset().findAndGetUint16(DCM_Rows, rows);
  source.dataset().findAndGetUint16(DCM_Columns, cols);
  return {cols, rows};
}

// TID 4019: the algorithm is the bundle, its version the bundle file's hash.
void add_algorithm(DSRDocumentTree& t, const ModelIdentity& model) {
  using T = DSRTypes;
  check(add_item(t, T::RT_hasConceptMod, T::VT_Text, code("111001", "DCM", "Algorithm Name"), false)
            ->setStringValue(ascii(model.name).c_str()),
        "algorithm name");
  check(add_item(t, T::RT_hasConceptMod, T::VT_Text, code("111003", "DCM", "Algorithm Version"),
                 false)
            ->setStringValue(("sha256:" + model.sha256).c_str()),
        "algorithm version");
  if (!model.parameters.empty())
    check(add_item(t, T::RT_hasConceptMod, T::VT_Text,
                   code("111002", "DCM", "Algorithm Parameters"), false)
              ->setStringValue(ascii(model.parameters, 1024).c_str()),
          "algorithm parameters");
}

// The calibrated probability as a NUM (TID 300; six decimals, as predict's CSV), after the current
// item.
void add_probability(DSRDocumentTree& t, double probability, const char* what) {
  check(add_item(t, DSRTypes::RT_contains, DSRTypes::VT_Num,
                 code("WSSL-PFX", kPrivateScheme, "Probability of fracture"), false)
            ->setNumericValue(DSRNumericMeasurementValue(
                metrics::format_probability(probability).c_str(), code("1", "UCUM", "no units"))),
        what);
}

// A Measurement Group's opening, shared by the image-level group and each box's: the container (as
// the first child of the current item when `first`, else after it), its tracking identifier `label`
// and a tracking UID derived from the source, the model and `key`, the finding (fracture) and its
// site (wrist), and the algorithm (TID 4019).
void add_group_head(DSRDocumentTree& t, bool first, const SourceInstance& source,
                    const ModelIdentity& model, const std::string& label, const std::string& key,
                    const std::string& uid_root) {
  using T = DSRTypes;
  add_item(t, T::RT_contains, T::VT_Container, code("125007", "DCM", "Measurement Group"), first);
  check(add_item(t, T::RT_hasObsContext, T::VT_Text, code("112039", "DCM", "Tracking Identifier"),
                 true)
            ->setStringValue(label.c_str()),
        label + ": tracking identifier");
  check(add_item(t, T::RT_hasObsContext, T::VT_UIDRef,
                 code("112040", "DCM", "Tracking Unique Identifier"), false)
            ->setStringValue(
                uid_for("wristssl/tracking/" + source.sop_instance_uid + "/" + model.sha256 + key,
                        uid_root)
                    .c_str()),
        label + ": tracking unique identifier");
  check(add_item(t, T::RT_contains, T::VT_Code, code("121071", "DCM", "Finding"), false)
            ->setCodeValue(code("72704001", "SCT", "Fracture")),
        label + ": finding");
  check(
      add_item(t, T::RT_hasConceptMod, T::VT_Code, code("363698007", "SCT", "Finding Site"), false)
          ->setCodeValue(code("8205005", "SCT", "Wrist")),
      label + ": finding site");
  add_algorithm(t, model);
}

// Imaging Measurements > Measurement Group (TID 1410, its region the whole image): the finding and
// its site, the algorithm, the calibrated probability (TID 300), the image and the qualitative
// evaluation.
void add_measurement_group(DSRDocumentTree& t, const SourceInstance& source, const Finding& finding,
                           const ModelIdentity& model, const std::string& uid_root) {
  using T = DSRTypes;
  add_item(t, T::RT_contains, T::VT_Container, code("126010", "DCM", "Imaging Measurements"),
           false);
  add_group_head(t, true, source, model, "wrist fracture", "", uid_root);
  add_probability(t, finding.probability, "probability");
  // Where: the whole image (the classifier's finding concerns all of it), so that the group is a
  // planar ROI group (TID 1410) like the box groups that may follow; a source that does not give
  // its size gets a plain reference instead.
  const auto [cols, rows] = source_size(source);
  if (cols > 0 && rows > 0) {
    add_image_region(t, source, 0, 0, cols, rows, "whole image region");
  } else {
    add_source_image(t, source, T::AM_afterCurrent, "image reference", "image reference");
  }
  // Qualitative evaluation
  const char* value = by_decision(finding.decision, "52101004", "2667000", "82334004");
  const char* meaning = by_decision(finding.decision, "Present", "Absent", "Indeterminate");
  if (finding.decision != "fracture" && finding.decision != "no_fracture" && finding.decision != "refer")
    throw DicomError(source.name() + ": unknown decision '" + finding.decision + "'");
  check(add_item(t, T::RT_contains, T::VT_Code, code("72704001", "SCT", "Fracture"), false)
            ->setCodeValue(code(value, "SCT", meaning)),
        "qualitative evaluation");
}

// One more Measurement Group (TID 1410, planar ROI) per region, after the image-level group (whose
// region is the whole image; the current item is inside it): the finding and its site, the
// algorithm, the region as a closed POLYLINE selected from the analysed image, its probability and
// its evaluation (present in the fracture band, indeterminate in the refer band).
void add_region_groups(DSRDocumentTree& t, const SourceInstance& source, const Finding& finding,
                       const ModelIdentity& model, const std::string& uid_root) {
  using T = DSRTypes;
  for (size_t k = 0; k < finding.regions.size(); ++k) {
    const Region& r = finding.regions[k];
    if (!(std::isfinite(r.x0 + r.y0 + r.x1 + r.y1) && r.x1 > r.x0 && r.y1 > r.y0 && r.x0 >= 0 &&
          r.y0 >= 0) ||
        !(r.probability >= 0 && r.probability <= 1))
      throw DicomError(source.name() + ": region " + std::to_string(k + 1) + " is not a box");
    if (r.band != "fracture" && r.band != "refer")
      throw DicomError(source.name() + ": region band '" + r.band +
                       "' is neither fracture nor refer");
    t.goUp();  // from the previous group's last item to that group
    add_group_head(t, false, source, model, "wrist fracture region " + std::to_string(k + 1),
                   "/region/" + std::to_string(k + 1), uid_root);
    add_image_region(t, source, r.x0, r.y0, r.x1, r.y1, "image region");
    add_probability(t, r.probability, "region probability");
    const bool present = r.band == "fracture";
    check(add_item(t, T::RT_contains, T::VT_Code, code("72704001", "SCT", "Fracture"), false)
              ->setCodeValue(code(present ? "52101004" : "82334004", "SCT",
                                  present ? "Present" : "Indeterminate")),
          "region qualitative evaluation");
  }
}

// The document's own attributes: the evidence (the source, under a derived series UID when it has
// none: the module requires one) and the new series in the source's study.
void set_document_attributes(DSRDocument& doc, const SourceInstance& source,
                             const ModelIdentity& model) {
  check(doc.getCodingSchemeIdentification().addItem(kPrivateScheme, "", "wristssl local codes", "wristssl project"),
        "coding scheme");
  check(doc.getCurrentRequestedProcedureEvidence().addItem(source.study_uid.c_str(),
                                                           source.series_uid.empty()
                                                               ? uid_for("wristssl/unknown-series/" + source.sop_instance_uid)
                                                                     .c_str()
                                                               : source.series_uid.c_str(),
                                                           source.sop_class_uid.c_str(),
                                                           source.sop_instance_uid.c_str()),
        "current requested procedure evidence");
  check(doc.createNewSeriesInStudy(source.study_uid.c_str()), "series");
  check(doc.setSeriesDescription("wristssl fracture report"), "series description");
  check(doc.setSeriesNumber("9901"), "series number");
  check(doc.setInstanceNumber("1"), "instance number");
  check(doc.setManufacturer(kManufacturer), "manufacturer");
  check(doc.setManufacturerModelName(ascii(model.name).c_str()), "model name");
  check(doc.setSoftwareVersions(wristssl::kVersion), "software versions");
  check(doc.completeDocument(), "completion flag");
}

}  // namespace

std::unique_ptr<DcmFileFormat> make_report(const SourceInstance& source, const Finding& finding,
                                           const ModelIdentity& model,
                                           const std::string& uid_root) {
  if (!std::isfinite(finding.probability) || finding.probability < 0 || finding.probability > 1)
    throw DicomError(source.name() + ": probability out of range");
  DSRDocument doc(DSRTypes::DT_Comprehensive3DSR);
  add_report_root(doc.getTree(), model, uid_root);
  add_image_library(doc.getTree(), source);
  add_measurement_group(doc.getTree(), source, finding, model, uid_root);
  add_region_groups(doc.getTree(), source, finding, model, uid_root);
  set_document_attributes(doc, source, model);

  auto file = std::make_unique<DcmFileFormat>();
  DcmDataset& ds = *file->getDataset();
  check(doc.write(ds), "write");
  // After the document: its (empty) patient and study attributes become the source's, and its
  // generated series and instance UIDs derived ones, so that writing again replaces the result.
  copy_context(source.dataset(), ds);
  check(ds.putAndInsertString(DCM_SeriesInstanceUID, series_uid(source, model, "sr", uid_root).c_str()), "series UID");
  check(ds.putAndInsertString(DCM_SOPInstanceUID, report_uid(source, model, uid_root).c_str()), "SOP Instance UID");
  add_contributing_equipment(ds, model);
  return file;
}

// ---------------------------------------------------------------------------------------------------------
// The secondary capture

std::vector<std::string> banner_text(const Finding& finding, const ModelIdentity& model) {
  char p[32];
  std::snprintf(p, sizeof(p), "%.0f%%", 100.0 * finding.probability);
  const std::string head = by_decision(finding.decision, "FRACTURE SUSPECTED", "NO FRACTURE FOUND",
                                       "UNCERTAIN - REFER TO A READER");
  std::vector<std::string> lines = {head + "  P(fracture) " + p, "AI: " + ascii(model.id),
                                    "Heatmap: Grad-CAM, red = evidence for fracture"};
  if (!finding.regions.empty())
    lines.push_back(finding.regions.size() == 1
                        ? "White box: where the AI places the fracture"
                        : "White boxes: where the AI places fractures (dashed: uncertain)");
  if (model.research_only) lines.push_back("RESEARCH USE ONLY - NOT FOR DIAGNOSTIC USE");
  return lines;
}

namespace {

// The picture below its banner: the decision in its colour, the research-only warning in yellow.
report::Overlay with_banner(const report::Overlay& picture, const Finding& finding,
                            const ModelIdentity& model) {
  const std::vector<std::string> text = banner_text(finding, model);
  const report::Rgb head_colour =
      by_decision(finding.decision, report::Rgb{255, 80, 80}, report::Rgb{120, 230, 120},
                  report::Rgb{255, 200, 60});
  std::vector<report::BannerLine> lines = {{text[0], head_colour}};
  for (size_t i = 1; i < text.size(); ++i)
    lines.push_back({text[i], text[i].rfind("RESEARCH", 0) == 0 ? report::Rgb{255, 230, 0} : report::Rgb{230, 230, 230}});
  return report::add_banner(picture, lines);
}

// Image Pixel: 8-bit RGB, interleaved. Rows and Columns are 16-bit: a larger picture cannot be
// described, so it is refused before its pixels are copied.
void put_rgb_pixels(DcmDataset& ds, const report::Overlay& img, const SourceInstance& source) {
  check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 3), "SamplesPerPixel");
  check(ds.putAndInsertString(DCM_PhotometricInterpretation, "RGB"),
        DcmTag(DCM_PhotometricInterpretation).getTagName());
  check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), "PlanarConfiguration");
  check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(img.height)), "Rows");
  check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(img.width)), "Columns");
  check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), "BitsAllocated");
  check(ds.putAndInsertUint16(DCM_BitsStored, 8), "BitsStored");
  check(ds.putAndInsertUint16(DCM_HighBit, 7), "HighBit");
  check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), "PixelRepresentation");
  if (img.width > 65535 || img.height > 65535)
    throw DicomError(source.name() + ": picture too large");
  check(ds.putAndInsertUint8Array(DCM_PixelData, img.rgb.data(),
                                  static_cast<unsigned long>(img.rgb.size())),
        "PixelData");
}

}  // namespace

std::unique_ptr<DcmFileFormat> make_secondary_capture(const SourceInstance& source,
                                                      const Finding& finding,
                                                      const ModelIdentity& model,
                                                      const report::Overlay& picture,
                                                      const std::string& uid_root) {
  const report::Overlay img = with_banner(picture, finding, model);

  auto file = std::make_unique<DcmFileFormat>();
  DcmDataset& ds = *file->getDataset();
  copy_context(source.dataset(), ds);
  const std::string date = now("%Y%m%d"), time = now("%H%M%S");
  auto put = [&](const DcmTagKey& key, const std::string& v) {
    check(ds.putAndInsertString(key, v.c_str()), DcmTag(key).getTagName());
  };
  put(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  put(DCM_SOPInstanceUID, secondary_capture_uid(source, model, uid_root));
  put(DCM_InstanceCreationDate, date);
  put(DCM_InstanceCreationTime, time);
  // General Series
  put(DCM_Modality, "OT");
  put(DCM_SeriesInstanceUID, series_uid(source, model, "sc", uid_root));
  put(DCM_SeriesNumber, "9902");
  put(DCM_SeriesDescription, "wristssl fracture heatmap");
  put(DCM_SeriesDate, date);
  put(DCM_SeriesTime, time);
  copy_laterality(source.dataset(), ds);
  // General Equipment and SC Equipment
  put(DCM_Manufacturer, kManufacturer);
  put(DCM_ManufacturerModelName, ascii(model.name));
  put(DCM_SoftwareVersions, wristssl::kVersion);
  put(DCM_ConversionType, "WSD");
  put(DCM_SecondaryCaptureDeviceManufacturer, kManufacturer);
  put(DCM_SecondaryCaptureDeviceManufacturerModelName, ascii(model.name));
  put(DCM_SecondaryCaptureDeviceSoftwareVersions, wristssl::kVersion);
  put(DCM_DateOfSecondaryCapture, date);
  put(DCM_TimeOfSecondaryCapture, time);
  // General Image
  put(DCM_InstanceNumber, "1");
  put(DCM_ContentDate, date);
  put(DCM_ContentTime, time);
  put(DCM_ImageType, "DERIVED\\SECONDARY");
  put(DCM_DerivationDescription, "Grad-CAM heatmap of a fracture classifier with its decision burned in");
  put(DCM_BurnedInAnnotation, "YES");
  put(DCM_RecognizableVisualFeatures, "NO");
  // Copied when it is a valid pair (the picture keeps the source's orientation).
  const std::string orientation = attribute(source.dataset(), DCM_PatientOrientation);
  if (std::count(orientation.begin(), orientation.end(), '\\') != 1) {
    check(ds.insertEmptyElement(DCM_PatientOrientation), "PatientOrientation");
  } else {
    put(DCM_PatientOrientation, orientation);
  }
  if (attribute(source.dataset(), DCM_LossyImageCompression) == "01") {
    // Derived from a lossy image: stays marked lossy (PS3.3 C.7.6.1.1.5).
    put(DCM_LossyImageCompression, "01");
    for (const DcmTagKey& key : {DCM_LossyImageCompressionRatio, DCM_LossyImageCompressionMethod}) {
      const std::string v = attribute(source.dataset(), key);
      if (!v.empty()) put(key, v);
    }
  }
  DcmItem* src = nullptr;
  check(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, src, -2), "SourceImageSequence");
  check(src->putAndInsertString(DCM_ReferencedSOPClassUID, source.sop_class_uid.c_str()), "ReferencedSOPClassUID");
  check(src->putAndInsertString(DCM_ReferencedSOPInstanceUID, source.sop_instance_uid.c_str()),
        "ReferencedSOPInstanceUID");
  DcmItem* purpose = nullptr;
  check(src->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, purpose, -2), "PurposeOfReference");
  add_code(*purpose, "121322", "DCM", "Source image for image processing operation");
  put_rgb_pixels(ds, img, source);
  add_contributing_equipment(ds, model);
  return file;
}

// ---------------------------------------------------------------------------------------------------------
// Files

std::string file_bytes(DcmFileFormat& file, const std::string& name) {
  // What saveFile would write, into memory: the stream hands over its buffer whenever it fills.
  std::vector<char> buffer(1u << 20);
  DcmOutputBufferStream out(buffer.data(), static_cast<offile_off_t>(buffer.size()));
  std::string bytes;
  auto take = [&] {
    void* data = nullptr;
    offile_off_t length = 0;
    out.flushBuffer(data, length);
    bytes.append(static_cast<const char*>(data), static_cast<size_t>(length));
  };
  DcmWriteCache cache;
  file.transferInit();
  OFCondition c;
  do {
    c = file.write(out, EXS_LittleEndianExplicit, EET_UndefinedLength, &cache, EGL_recalcGL, EPD_noChange, 0, 0, 0,
                   EWM_createNewMeta);
    take();
  } while (c == EC_StreamNotifyClient);
  file.transferEnd();
  if (c.bad()) throw DicomError(name + ": cannot encode: " + c.text());
  out.flush();
  take();
  return bytes;
}

void save_atomically(DcmFileFormat& file, const std::string& path) {
  util::atomic_write(path, file_bytes(file, path));
}

ResultFiles write_results(const SourceInstance& source, const Finding& finding, const ModelIdentity& model,
                          const report::Overlay& picture, const std::string& dir, const std::string& uid_root) {
  fs::create_directories(dir);
  ResultFiles out;
  auto sr = make_report(source, finding, model, uid_root);
  auto sc = make_secondary_capture(source, finding, model, picture, uid_root);
  out.report = (fs::path(dir) / (source.sop_instance_uid + ".sr.dcm")).string();
  out.secondary_capture = (fs::path(dir) / (source.sop_instance_uid + ".sc.dcm")).string();
  out.report_uid = report_uid(source, model, uid_root);
  out.secondary_capture_uid = secondary_capture_uid(source, model, uid_root);
  save_atomically(*sr, out.report);
  save_atomically(*sc, out.secondary_capture);
  return out;
}

}  // namespace wristssl::dicom
