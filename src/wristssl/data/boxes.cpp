#include "wristssl/data/boxes.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include "wristssl/util/fs.h"

namespace fs = std::filesystem;

namespace wristssl::data {

double iou(const Box& a, const Box& b) {
  const double iw = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const double ih = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  const double uni = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return uni > 0 ? inter / uni : 0;
}

bool contains(const Box& b, double x, double y) {
  return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
}

YoloFile parse_yolo(const std::string& text, const std::string& name, int box_class) {
  YoloFile out;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto problem = [&](const std::string& why) {
      out.problems.push_back(name + ":" + std::to_string(number) + ": " + why);
    };
    std::istringstream fields(line);
    std::vector<double> v;
    std::string token;
    bool numeric = true;
    while (fields >> token) {
      try {
        size_t used = 0;
        v.push_back(std::stod(token, &used));
        if (used != token.size()) numeric = false;
      } catch (const std::exception&) {
        numeric = false;
      }
    }
    if (!numeric || v.size() != 5) {
      problem("expected 'class cx cy w h' (five numbers), got '" + line + "'");
      continue;
    }
    if (v[0] != std::floor(v[0]) || v[0] < 0) {
      problem("class '" + std::to_string(v[0]) + "' is not a class index");
      continue;
    }
    const double cx = v[1], cy = v[2], w = v[3], h = v[4];
    if (!std::isfinite(cx + cy + w + h) || !(w > 0) || !(h > 0)) {
      problem("box size " + std::to_string(w) + " x " + std::to_string(h) + " is not positive");
      continue;
    }
    if (cx < 0 || cx > 1 || cy < 0 || cy > 1) {
      problem("box centre (" + std::to_string(cx) + ", " + std::to_string(cy) +
              ") lies outside the image");
      continue;
    }
    if (box_class >= 0 && static_cast<int>(v[0]) != box_class) continue;
    Box b{std::clamp(cx - w / 2, 0.0, 1.0), std::clamp(cy - h / 2, 0.0, 1.0),
          std::clamp(cx + w / 2, 0.0, 1.0), std::clamp(cy + h / 2, 0.0, 1.0)};
    out.boxes.push_back(b);
  }
  return out;
}

BoxTable read_box_folder(const std::string& folder, const std::vector<std::string>& paths,
                         int box_class) {
  if (!fs::is_directory(folder)) {
    throw std::runtime_error("box folder " + folder + " does not exist or is not a folder");
  }
  std::map<std::string, std::string> by_stem;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() == ".txt") by_stem[e.path().stem().string()] = e.path().string();
  }
  BoxTable t;
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto it = by_stem.find(fs::path(paths[i]).stem().string());
    if (it == by_stem.end()) continue;
    YoloFile f = parse_yolo(util::read_text(it->second), it->second, box_class);
    t.problems.insert(t.problems.end(), f.problems.begin(), f.problems.end());
    t.by_image[i] = std::move(f.boxes);
    ++t.files;
  }
  return t;
}

}  // namespace wristssl::data
