#pragma once
// A model's answer about a DICOM radiograph as DICOM objects a PACS viewer shows beside the image:
// - a Comprehensive 3D SR with TID 1500 (Measurement Report) at its root and one TID 1501 measurement group:
//   the finding (fracture), its site (wrist), a qualitative evaluation (present / absent / indeterminate),
//   the calibrated probability, the algorithm (TID 4019: the bundle's name and SHA-256), a reference to the
//   image analysed, VerificationFlag UNVERIFIED and the Contributing Equipment Sequence (IHE AI Results);
// - an RGB Secondary Capture of the radiograph with the Grad-CAM overlay and a banner burned in.
// Each goes into a new series of the source's study; patient and study attributes are copied exactly from
// the source. UIDs are derived from the source instance and the model (see uid.h), so a result written
// again for the same image and model replaces the earlier one.

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dctagkey.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "wristssl/report/heatmap.h"

namespace wristssl::dicom {

/// A DICOM instance that cannot be given results (not DICOM, no pixel data, a required UID missing); the
/// message names the file and the reason.
class DicomError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The value of `key` in `item` (all values, backslash-separated; trailing padding removed), or "".
std::string attribute(DcmItem& item, const DcmTagKey& key);

/// Whether `ds` is a derived image wristssl wrote (its Secondary Capture), so that a node never scores its
/// own results when a router sends them back.
bool is_wristssl_result(DcmItem& ds);

/// The model that produced a result.
struct ModelIdentity {
  std::string name;     // the bundle's name
  std::string sha256;   // the bundle file's SHA-256 (hex)
  std::string id;       // name@first 12 hex digits
  std::string parameters;  // e.g. "threshold 0.41; refer band [0.30, 0.55); temperature 2.1"
  bool research_only = true;  // banner "NOT FOR DIAGNOSTIC USE"
};

/// A region of the source image where the model places a fracture: a rectangle in pixel
/// coordinates (DICOM's image-relative convention: 0\0 is the top-left corner of the top-left
/// pixel, so x1\y1 is the bottom-right corner of the last pixel covered), its calibrated
/// probability and its band ("fracture" or "refer").
struct Region {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double probability = 0;
  std::string band;
};

/// What the model said about one image.
struct Finding {
  double probability = 0;  // calibrated P(fracture)
  std::string decision;    // "fracture", "no_fracture" or "refer"
  std::vector<Region> regions;  // where, strongest first (the SR's image regions)
};

/// The header of an analysed DICOM instance (pixel data not kept).
class SourceInstance {
 public:
  /// Reads the file's header with the guarded parser; throws DicomError naming the file when it is not a
  /// DICOM data set or lacks SOP Class, SOP Instance or Study Instance UID.
  static SourceInstance read(const std::string& path);
  /// The same from bytes in memory (`name` for messages).
  static SourceInstance parse(const std::vector<uint8_t>& bytes, const std::string& name);

  const std::string& name() const { return name_; }
  DcmDataset& dataset() const { return *file_->getDataset(); }
  std::string sop_class_uid, sop_instance_uid, study_uid, series_uid, modality;
  bool has_pixel_data = false;

 private:
  std::string name_;
  std::shared_ptr<DcmFileFormat> file_;
};

/// The structured report (see the top of this file). `uid_root` as for uid_for.
std::unique_ptr<DcmFileFormat> make_report(const SourceInstance& source, const Finding& finding,
                                           const ModelIdentity& model, const std::string& uid_root = "2.25");

/// The Secondary Capture: `picture` (the radiograph with the heatmap, RGB) below a banner with the decision,
/// the probability, the model and, when research-only, "NOT FOR DIAGNOSTIC USE".
std::unique_ptr<DcmFileFormat> make_secondary_capture(const SourceInstance& source, const Finding& finding,
                                                      const ModelIdentity& model, const report::Overlay& picture,
                                                      const std::string& uid_root = "2.25");

/// The banner lines of the Secondary Capture (for tests and the README).
std::vector<std::string> banner_text(const Finding& finding, const ModelIdentity& model);

struct ResultFiles {
  std::string report, secondary_capture;  // paths written
  std::string report_uid, secondary_capture_uid;  // their SOP Instance UIDs
};

/// Writes both objects into `dir` as <source SOP Instance UID>.sr.dcm and .sc.dcm, each atomically (a
/// temporary file, fsync, rename): a reader never sees half a file, and writing again replaces.
ResultFiles write_results(const SourceInstance& source, const Finding& finding, const ModelIdentity& model,
                          const report::Overlay& picture, const std::string& dir,
                          const std::string& uid_root = "2.25");

/// The bytes DcmFileFormat::saveFile would write (Part 10, explicit VR little endian, a new meta header).
std::string file_bytes(DcmFileFormat& file, const std::string& name);

/// Saves a DICOM file atomically (util::atomic_write of file_bytes).
void save_atomically(DcmFileFormat& file, const std::string& path);

/// The "2.25" UIDs of the objects about `source` by `model`, so that callers can name them before writing.
std::string report_uid(const SourceInstance& source, const ModelIdentity& model, const std::string& uid_root);
std::string secondary_capture_uid(const SourceInstance& source, const ModelIdentity& model,
                                  const std::string& uid_root);

}  // namespace wristssl::dicom
