#pragma once
// Datasets: the four layouts people have (GRAZPEDWRI-DX csv + images, class folders, a CSV manifest,
// an unlabelled folder tree), read into one list of records.

#include <map>
#include <string>
#include <vector>

#include "wristssl/data/boxes.h"

namespace wristssl::data {

/// One image: label -1 means unlabelled; group keeps related images (same patient) in one split.
struct Record {
  std::string path;   // absolute or relative to the working folder, as found
  int label = -1;
  std::string group;  // patient id, duplicate cluster, ...; defaults to the path
  bool boxes_known = false;  // a label file was found for the image (see DatasetOptions::boxes)
  std::vector<Box> boxes;    // its fracture boxes (empty: none marked)
};

enum class Layout { kAuto, kGrazpedwri, kFolders, kManifest, kUnlabelled };

/// "auto", "grazpedwri", "folders", "manifest", "unlabelled"; parse_layout throws on other names.
const char* layout_name(Layout layout);
Layout parse_layout(const std::string& name);

/// Where the data is and how to read it.
struct DatasetOptions {
  std::string data;                    // a folder or a .csv file
  Layout layout = Layout::kAuto;
  // GRAZPEDWRI-DX: folders searched for <filestem>.png (default: "images" beside dataset.csv, and the
  // folder of the csv itself); rows flagged cast / metal / diagnosis_uncertain can be dropped.
  std::vector<std::string> image_dirs;
  bool exclude_cast = false;
  bool exclude_metal = false;
  bool exclude_uncertain = false;
  // Class folders: the negative (label 0) and positive (label 1) folder names; empty = detect
  // (fractured / not_fractured, FracAtlas's Fractured / Non_fractured, any case).
  std::string negative_class;
  std::string positive_class;
  // Manifest: column names and row filters "column=value" (all must hold), e.g. hand=1.
  std::string path_column = "path";
  std::string label_column = "label";
  std::string group_column = "group";  // optional in the file
  std::vector<std::string> where;
  // Fracture boxes (any layout): a folder of YOLO files, <image stem>.txt; the class index kept
  // (-1: every box; FracAtlas marks fractures only, GRAZPEDWRI-DX's fracture class is 3).
  std::string boxes;
  int box_class = -1;
};

/// The records plus what was found on the way.
struct Dataset {
  Layout layout = Layout::kAuto;
  std::string source;                       // the data option as given
  std::vector<std::string> class_names;     // index = label; empty when unlabelled
  std::vector<Record> records;
  std::map<std::string, int> dropped;       // reason -> rows not used (missing image, filter, ...)
  std::vector<std::string> missing_examples;  // a few paths named in the csv but not found
  std::vector<std::string> box_problems;      // malformed box lines, named (skipped)

  bool labelled() const { return !class_names.empty(); }
  /// Number of records per label (-1 = unlabelled).
  std::map<int, int> label_counts() const;
  /// Number of distinct groups.
  size_t group_count() const;
};

/// Reads a dataset; throws std::runtime_error naming the file and the reason when the layout is wrong.
Dataset load_dataset(const DatasetOptions& options);

/// Parses a GRAZPEDWRI-DX flag: "1", "1.0", "true" -> true; "", "0", "0.0" -> false; else throws.
bool parse_flag(const std::string& value, const std::string& where);

/// Image files under `root` (recursive, sorted), by extension .png .jpg .jpeg .dcm .dicom or none;
/// hidden files and folders skipped. Symlinked folders are followed, each real folder once (so a
/// loop ends). Never throws on an entry: a link loop, a dangling link, an unreadable file or a
/// folder named like an image is listed as it is, so that reading it reports why. Throws
/// std::runtime_error when `root` is not a readable folder.
std::vector<std::string> list_image_files(const std::string& root);

}  // namespace wristssl::data
