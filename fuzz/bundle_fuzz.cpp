// libFuzzer target for the model bundle reader. The input gets a valid SHA-256 trailer appended, so
// that mutations reach what lies behind the checksum (lengths, manifest JSON, tensor list); with
// the checksum left to chance every input would stop there. A bundle may be refused, never crash or
// over-allocate.
#include <cstdint>
#include <string>

#include "wristssl/models/bundle.h"
#include "wristssl/util/hash.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  bytes += wristssl::util::sha256_digest(bytes.data(), bytes.size());
  try {
    const wristssl::models::Bundle b = wristssl::models::parse_bundle(bytes, "fuzz.wristssl");
    if (b.manifest.contains("decision")) {
      try {
        (void)wristssl::models::DecisionRule::from_json(b.manifest["decision"]);
      } catch (const std::exception&) {
      }
    }
  } catch (const wristssl::models::BundleError&) {
  }
  return 0;
}
