#pragma once
// Fracture boxes: YOLO label files (FracAtlas's annotations/yolo, GRAZPEDWRI-DX's labels), one
// <image stem>.txt per image, one "class cx cy w h" line per box in coordinates normalised to the
// image. Normalised coordinates survive the stretch to the cached square unchanged, so a box marks
// the same pixels in the original, the cache and every crop cut from it.
#include <map>
#include <string>
#include <vector>

namespace wristssl::data {

/// A box in coordinates normalised to the image: x0 <= x1 and y0 <= y1, all in [0, 1].
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double cx() const { return (x0 + x1) / 2; }
  double cy() const { return (y0 + y1) / 2; }
  bool operator==(const Box& o) const {
    return x0 == o.x0 && y0 == o.y0 && x1 == o.x1 && y1 == o.y1;
  }
};

/// A box a model found: where, and how strongly (its score; larger is more confident; what the
/// number means is the producer's: see models/box_decoding.h).
struct ScoredBox {
  Box box;
  double score = 0;
};

/// Intersection over union of two boxes (0 when either is empty).
double iou(const Box& a, const Box& b);
/// Whether the point (x, y) lies in `b` (edges included).
bool contains(const Box& b, double x, double y);

/// One YOLO file read: the boxes of class `box_class` (-1: every class), clipped to the image;
/// malformed lines (not five numbers, a size <= 0, a centre outside the image) are skipped and
/// described in `problems` ("FILE:LINE: reason"), never fatal.
struct YoloFile {
  std::vector<Box> boxes;
  std::vector<std::string> problems;
};
YoloFile parse_yolo(const std::string& text, const std::string& name, int box_class = -1);

/// Boxes for a list of image paths from a folder of YOLO files matched by file stem
/// (IMG0000025.jpg -> IMG0000025.txt). An image with no file has no known boxes (absent from the
/// map); an empty file means "no box". Throws when `folder` is not a folder.
struct BoxTable {
  std::map<size_t, std::vector<Box>> by_image;  // index into `paths` -> its boxes
  std::vector<std::string> problems;            // malformed lines, named
  size_t files = 0;                             // label files matched
};
BoxTable read_box_folder(const std::string& folder, const std::vector<std::string>& paths,
                         int box_class = -1);

}  // namespace wristssl::data
