#include "wristssl/data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;

namespace wristssl::data {
namespace {

constexpr size_t kMissingExamples = 5;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_extension(const fs::path& p) {
  static const std::set<std::string> kExt = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ""};
  const std::string name = p.filename().string();
  if (name.empty() || name[0] == '.') return false;
  return kExt.count(lower(p.extension().string())) > 0;
}

// True when `inner` is `outer` or lies under it (both canonical).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

std::string resolve(const fs::path& base, const std::string& p) {
  fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

// Splits "column=value".
std::pair<std::string, std::string> parse_where(const std::string& w) {
  const auto eq = w.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw std::runtime_error("filter '" + w + "' is not of the form column=value");
  }
  return {w.substr(0, eq), w.substr(eq + 1)};
}

Dataset load_grazpedwri(const DatasetOptions& o, const fs::path& csv_path) {
  const util::CsvTable t = util::read_csv(csv_path.string());
  const std::string src = csv_path.string();
  const int c_stem = t.require_column("filestem", src);
  const int c_patient = t.require_column("patient_id", src);
  const int c_fracture = t.require_column("fracture_visible", src);
  const int c_cast = t.column("cast"), c_metal = t.column("metal");
  const int c_uncertain = t.column("diagnosis_uncertain");
  std::vector<fs::path> dirs;
  for (const auto& d : o.image_dirs) dirs.emplace_back(d);
  if (dirs.empty()) {
    dirs.push_back(csv_path.parent_path() / "images");
    dirs.push_back(csv_path.parent_path());
  }
  for (const auto& d : o.image_dirs) {
    if (!fs::is_directory(d)) throw std::runtime_error("image folder " + d + " does not exist");
  }
  // Index the folders once (20k stat calls on a network share are slow).
  std::map<std::string, std::string> found;
  for (const auto& d : dirs) {
    if (!fs::is_directory(d)) continue;
    for (const std::string& f : list_image_files(d.string())) {
      const fs::path p(f);
      if (lower(p.extension().string()) == ".png") found.emplace(p.stem().string(), f);
    }
  }
  Dataset ds;
  ds.layout = Layout::kGrazpedwri;
  ds.class_names = {"no_fracture", "fracture"};
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string where = src + ":" + std::to_string(r + 2);
    if (o.exclude_cast && c_cast >= 0 && parse_flag(row[c_cast], where)) {
      ++ds.dropped["cast"];
      continue;
    }
    if (o.exclude_metal && c_metal >= 0 && parse_flag(row[c_metal], where)) {
      ++ds.dropped["metal"];
      continue;
    }
    if (o.exclude_uncertain && c_uncertain >= 0 && parse_flag(row[c_uncertain], where)) {
      ++ds.dropped["diagnosis_uncertain"];
      continue;
    }
    const auto it = found.find(row[c_stem]);
    if (it == found.end()) {
      ++ds.dropped["image not found"];
      if (ds.missing_examples.size() < kMissingExamples) ds.missing_examples.push_back(row[c_stem] + ".png");
      continue;
    }
    Record rec;
    rec.path = it->second;
    rec.label = parse_flag(row[c_fracture], where) ? 1 : 0;
    rec.group = "patient:" + row[c_patient];
    ds.records.push_back(std::move(rec));
  }
  return ds;
}

// Finds the negative / positive class folders under root.
std::pair<std::string, std::string> detect_class_folders(const fs::path& root, const DatasetOptions& o) {
  std::vector<std::string> subdirs;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code entry_ec;  // a link loop is not a class folder, and does not stop the search
    if (it->is_directory(entry_ec) && it->path().filename().string()[0] != '.') {
      subdirs.push_back(it->path().filename().string());
    }
  }
  std::sort(subdirs.begin(), subdirs.end());
  auto find_ci = [&](const std::string& name) -> std::string {
    for (const auto& s : subdirs) {
      if (lower(s) == lower(name)) return s;
    }
    return "";
  };
  if (!o.negative_class.empty() || !o.positive_class.empty()) {
    if (o.negative_class.empty() || o.positive_class.empty()) {
      throw std::runtime_error("give both --negative-class and --positive-class");
    }
    const std::string neg = find_ci(o.negative_class), pos = find_ci(o.positive_class);
    if (neg.empty() || pos.empty()) {
      throw std::runtime_error(root.string() + ": class folder '" +
                               (neg.empty() ? o.negative_class : o.positive_class) + "' not found");
    }
    return {neg, pos};
  }
  for (const auto& [n, p] : std::vector<std::pair<std::string, std::string>>{
           {"not_fractured", "fractured"}, {"non_fractured", "fractured"}, {"negative", "positive"},
           {"normal", "fracture"}, {"no_fracture", "fracture"}}) {
    const std::string neg = find_ci(n), pos = find_ci(p);
    if (!neg.empty() && !pos.empty()) return {neg, pos};
  }
  return {"", ""};
}

Dataset load_folders(const fs::path& root, const std::string& neg, const std::string& pos) {
  Dataset ds;
  ds.layout = Layout::kFolders;
  ds.class_names = {neg, pos};
  for (int label = 0; label < 2; ++label) {
    for (const auto& f : list_image_files((root / ds.class_names[label]).string())) {
      ds.records.push_back({f, label, f});
    }
  }
  return ds;
}

Dataset load_manifest(const DatasetOptions& o, const fs::path& csv_path) {
  const util::CsvTable t = util::read_csv(csv_path.string());
  const std::string src = csv_path.string();
  const int c_path = t.require_column(o.path_column, src);
  const int c_label = t.column(o.label_column);
  const int c_group = t.column(o.group_column);
  if (o.group_column != "group" && c_group < 0) t.require_column(o.group_column, src);
  std::vector<std::pair<int, std::string>> filters;
  for (const auto& w : o.where) {
    auto [col, value] = parse_where(w);
    filters.emplace_back(t.require_column(col, src), value);
  }
  Dataset ds;
  ds.layout = Layout::kManifest;
  const fs::path base = csv_path.parent_path();
  // Labels: 0/1, or class names (the positive name given, else sorted names: "fractured" > "not_...").
  std::set<std::string> names;
  if (c_label >= 0) {
    for (const auto& row : t.rows) {
      if (!row[c_label].empty()) names.insert(row[c_label]);
    }
  }
  const bool numeric = std::all_of(names.begin(), names.end(), [](const std::string& s) {
    return s == "0" || s == "1" || s == "0.0" || s == "1.0";
  });
  if (c_label >= 0 && !names.empty()) {
    if (numeric) {
      ds.class_names = {"0", "1"};
    } else {
      if (names.size() != 2) {
        throw std::runtime_error(src + ": column '" + o.label_column + "' has " +
                                 std::to_string(names.size()) + " distinct labels; expected 2 (or 0/1)");
      }
      std::string pos = o.positive_class;
      if (pos.empty()) {
        for (const auto& n : names) {
          const std::string l = lower(n);
          if (l == "fractured" || l == "fracture" || l == "positive" || l == "1") pos = n;
        }
      }
      if (!names.count(pos)) {
        throw std::runtime_error(src + ": cannot tell which label is positive; give --positive-class");
      }
      for (const auto& n : names) {
        if (n != pos) ds.class_names.push_back(n);
      }
      ds.class_names.push_back(pos);
    }
  }
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    bool keep = true;
    for (const auto& [col, value] : filters) keep = keep && row[col] == value;
    if (!keep) {
      ++ds.dropped["filter"];
      continue;
    }
    Record rec;
    rec.path = resolve(base, row[c_path]);
    if (!ds.class_names.empty()) {
      const std::string& l = row[c_label];
      if (l.empty()) throw std::runtime_error(src + ":" + std::to_string(r + 2) + ": empty label");
      if (numeric) {
        rec.label = (l == "1" || l == "1.0") ? 1 : 0;
      } else {
        rec.label = l == ds.class_names[1] ? 1 : 0;
      }
    }
    rec.group = (c_group >= 0 && !row[c_group].empty()) ? o.group_column + ":" + row[c_group] : rec.path;
    ds.records.push_back(std::move(rec));
  }
  return ds;
}

}  // namespace

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::kAuto: return "auto";
    case Layout::kGrazpedwri: return "grazpedwri";
    case Layout::kFolders: return "folders";
    case Layout::kManifest: return "manifest";
    case Layout::kUnlabelled: return "unlabelled";
  }
  return "?";
}

Layout parse_layout(const std::string& name) {
  for (Layout l : {Layout::kAuto, Layout::kGrazpedwri, Layout::kFolders, Layout::kManifest,
                   Layout::kUnlabelled}) {
    if (name == layout_name(l)) return l;
  }
  throw std::runtime_error("unknown layout '" + name +
                           "' (expected auto, grazpedwri, folders, manifest or unlabelled)");
}

bool parse_flag(const std::string& value, const std::string& where) {
  if (value.empty() || value == "0" || value == "0.0" || value == "false") return false;
  if (value == "1" || value == "1.0" || value == "true") return true;
  throw std::runtime_error(where + ": flag value '" + value + "' is not 1, 1.0, 0 or empty");
}

std::map<int, int> Dataset::label_counts() const {
  std::map<int, int> counts;
  for (const auto& r : records) ++counts[r.label];
  return counts;
}

size_t Dataset::group_count() const {
  std::set<std::string> groups;
  for (const auto& r : records) groups.insert(r.group);
  return groups.size();
}

std::vector<std::string> list_image_files(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw std::runtime_error(root + " is not a folder");
  std::vector<std::string> files;
  // Folders already entered, by their real path: a symlinked folder that loops back (or a second
  // link to an entered folder) is not walked again. Plain folders are walked before linked ones, so
  // that an image reachable both ways is listed under its own path, whatever order the folder lists
  // its entries in.
  std::set<fs::path> entered;
  std::vector<fs::path> plain{fs::path(root)}, linked;
  while (!plain.empty() || !linked.empty()) {
    std::vector<fs::path>& stack = plain.empty() ? linked : plain;
    const fs::path dir = stack.back();
    stack.pop_back();
    const fs::path real = fs::canonical(dir, ec);
    if (ec || !entered.insert(real).second) continue;
    std::vector<fs::directory_entry> entries;
    fs::directory_iterator it(dir, ec);
    if (ec && dir == fs::path(root))
      throw std::runtime_error("cannot list " + root + ": " + ec.message());
    // An unreadable subfolder, or an error while iterating, ends that folder, not the listing.
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) entries.push_back(*it);
    std::sort(entries.begin(), entries.end());
    std::vector<fs::path> subdirs_plain, subdirs_linked;
    for (const fs::directory_entry& e : entries) {
      const fs::path& p = e.path();
      const std::string name = p.filename().string();
      if (name.empty() || name[0] == '.') continue;  // hidden files and folders
      // status() follows links: a loop or a dangling link fails here and is listed as it is, so
      // that reading it reports the reason later instead of the listing stopping here.
      std::error_code status_ec;
      if (!fs::is_directory(e.status(status_ec))) {
        if (is_image_extension(p)) files.push_back(p.lexically_normal().string());
        continue;
      }
      if (!e.is_symlink(status_ec)) {
        subdirs_plain.push_back(p);
      } else if (!is_within(real, fs::canonical(p, status_ec))) {
        subdirs_linked.push_back(p);  // not a link back up to this folder or above it (a loop)
      }
      // A folder named like an image ("x.png/") is listed too, so that it shows up as unreadable.
      if (!p.extension().empty() && is_image_extension(p))
        files.push_back(p.lexically_normal().string());
    }
    // Reversed onto the stacks, so that folders are entered in sorted order.
    plain.insert(plain.end(), subdirs_plain.rbegin(), subdirs_plain.rend());
    linked.insert(linked.end(), subdirs_linked.rbegin(), subdirs_linked.rend());
    ec.clear();
  }
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// The boxes of --boxes on each record; malformed lines are named once and skipped.
void attach_boxes(Dataset& ds, const DatasetOptions& o) {
  std::vector<std::string> paths;
  for (const Record& r : ds.records) paths.push_back(r.path);
  BoxTable t = read_box_folder(o.boxes, paths, o.box_class);
  for (auto& [i, boxes] : t.by_image) {
    ds.records[i].boxes_known = true;
    ds.records[i].boxes = std::move(boxes);
  }
  for (const std::string& p : t.problems) std::fprintf(stderr, "boxes: skipped %s\n", p.c_str());
  ds.box_problems = std::move(t.problems);
}

}  // namespace

Dataset load_dataset(const DatasetOptions& o) {
  if (o.data.empty()) throw std::runtime_error("no --data given");
  const fs::path data(o.data);
  if (!fs::exists(data)) throw std::runtime_error(o.data + " does not exist");
  Dataset ds;
  auto is_grazpedwri_csv = [](const fs::path& p) {
    const std::string text = util::read_text(p.string());
    const util::CsvTable head = util::parse_csv(text.substr(0, text.find('\n')), p.string());
    return head.column("filestem") >= 0 && head.column("fracture_visible") >= 0;
  };
  Layout layout = o.layout;
  if (fs::is_regular_file(data)) {
    if (layout == Layout::kAuto) layout = is_grazpedwri_csv(data) ? Layout::kGrazpedwri : Layout::kManifest;
    if (layout == Layout::kGrazpedwri) {
      ds = load_grazpedwri(o, data);
    } else if (layout == Layout::kManifest) {
      ds = load_manifest(o, data);
    } else {
      throw std::runtime_error(o.data + " is a file; layout '" + layout_name(layout) + "' needs a folder");
    }
  } else {
    if (layout == Layout::kAuto && fs::is_regular_file(data / "dataset.csv") &&
        is_grazpedwri_csv(data / "dataset.csv")) {
      layout = Layout::kGrazpedwri;
    }
    if (layout == Layout::kGrazpedwri) {
      ds = load_grazpedwri(o, data / "dataset.csv");
    } else if (layout == Layout::kManifest) {
      throw std::runtime_error("layout 'manifest' needs a .csv file as --data");
    } else {
      auto [neg, pos] = layout == Layout::kUnlabelled ? std::pair<std::string, std::string>{}
                                                      : detect_class_folders(data, o);
      if (!neg.empty()) {
        ds = load_folders(data, neg, pos);
      } else if (layout == Layout::kFolders) {
        throw std::runtime_error(o.data + ": no class folders found (give --negative-class and --positive-class)");
      } else {
        ds.layout = Layout::kUnlabelled;
        for (const auto& f : list_image_files(o.data)) ds.records.push_back({f, -1, f});
      }
    }
  }
  ds.source = o.data;
  if (ds.records.empty()) throw std::runtime_error(o.data + ": no images found");
  if (!o.boxes.empty()) attach_boxes(ds, o);
  return ds;
}

}  // namespace wristssl::data
