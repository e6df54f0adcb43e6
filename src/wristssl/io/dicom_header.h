#pragma once
// The header of a DICOM file (everything but its pixel data) as a DCMTK data set, parsed with the same
// guards as the image decoder: no value can make DCMTK allocate more than the data holds, nesting is
// bounded, and a file that is not a readable data set is an ImageError naming it. For the code that
// writes results about an image (dicom/results.h) and the DICOM node.

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcfilefo.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "wristssl/io/image.h"

namespace wristssl::io {

/// Parses `data` (a DICOM file, with or without preamble and meta header). Pixel data is dropped; every
/// other value is in memory, so the result does not refer to `data`; `had_pixel_data` (when given) says
/// whether there was any. Throws ImageError.
std::unique_ptr<DcmFileFormat> parse_dicom_header(const uint8_t* data, size_t size, const std::string& name,
                                                  const ReadLimits& limits = {}, bool* had_pixel_data = nullptr);

}  // namespace wristssl::io
