// libFuzzer entry for read_image: any bytes must end in an image or an ImageError, nothing else.
#include <cstdint>
#include <cstdlib>

#include "wristssl/io/read_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wristssl::io::ReadLimits limits;
  // A tiny JPEG-LS / JPEG 2000 stream may honestly declare a huge image (about 10 bytes per pixel while
  // decoding); keep one input well under the fuzzer's memory limit.
  limits.max_pixels = 16LL * 1000 * 1000;
  try {
    const wristssl::io::Image img = wristssl::io::decode_image(data, size, "fuzz", limits);
    if (img.pixels.size() != static_cast<size_t>(img.info.width) * img.info.height) std::abort();
    for (float v : img.pixels) {
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();  // also catches NaN
    }
  } catch (const wristssl::io::ImageError&) {
  }
  return 0;
}
