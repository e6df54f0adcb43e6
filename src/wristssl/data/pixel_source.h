#pragma once
// What the training loader reads: N square 16-bit grey images of one size, some possibly unreadable.
// The preprocessing cache (radiographs) and the in-memory IDX reader (Fashion-MNIST) both provide it.

#include <cstddef>
#include <cstdint>
#include <string>

namespace wristssl::data {

class PixelSource {
 public:
  virtual ~PixelSource() = default;
  /// Number of images (readable or not).
  virtual size_t size() const = 0;
  /// Side of every image in pixels.
  virtual int image_size() const = 0;
  /// False when image i could not be decoded (see error(i)).
  virtual bool ok(size_t i) const = 0;
  /// "kind: reason" for an unreadable image, "" otherwise.
  virtual const std::string& error(size_t i) const = 0;
  /// [image_size * image_size] pixels, 0..65535 for [0, 1]; only when ok(i).
  virtual const uint16_t* pixels(size_t i) const = 0;
};

}  // namespace wristssl::data
