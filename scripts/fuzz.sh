#!/usr/bin/env bash
# Fuzzes read_image (or, with TARGET=bundle_fuzz, the model bundle reader) with libFuzzer + ASan/UBSan.
# Usage: [TARGET=read_image_fuzz|bundle_fuzz] scripts/fuzz.sh [SECONDS=600] [JOBS=1]
# Seeds: every bundled PNG, JPEG and DICOM; for bundles, a small well-formed bundle without its trailer.
# Findings are written to fuzz-findings/ (crash-*, oom-*, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${2:-1}
command -v clang++ >/dev/null || { echo "fuzz.sh needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWRISTSSL_FUZZ=ON -DWRISTSSL_WITH_TORCH=OFF -DWRISTSSL_BUILD_TESTS=OFF -DWRISTSSL_BUILD_BENCH=OFF >/dev/null
target=${TARGET:-read_image_fuzz}
cmake --build build-fuzz --target "$target"
corpus=build-fuzz/corpus-$target
mkdir -p "$corpus" fuzz-findings
if [[ $target == bundle_fuzz ]]; then
  # A well-formed bundle (two tiny tensors), without the SHA-256 trailer the harness appends.
  python3 - "$corpus/seed.bin" <<'PY'
import json, struct, sys
tensors = [("head.weight", [2, 3]), ("head.bias", [2])]
offset, listing = 0, []
for name, shape in tensors:
    n = 1
    for d in shape: n *= d
    listing.append({"name": name, "shape": shape, "dtype": "float32", "offset": offset, "nbytes": 4 * n})
    offset += 4 * n
manifest = json.dumps({"format": "wristssl.model", "format_version": 1, "name": "seed", "tensors": listing,
                       "decision": {"threshold": 0.5, "calibration": {"temperature": 1.0},
                                    "refer_band": {"lo": 0.45, "hi": 0.55}}}).encode()
body = b"WRISTSSL-MODEL\n\0" + struct.pack("<II", 1, 0) + struct.pack("<Q", len(manifest)) + manifest
body += struct.pack("<Q", offset) + b"\0" * offset
open(sys.argv[1], "wb").write(body)
PY
else
  find samples tests/fixtures -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.dcm' \) -size -600k -exec cp {} "$corpus/" \;
fi
# malloc_limit: a hostile length field must not make any decoder ask for gigabytes.
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
  "build-fuzz/fuzz/$target" "$corpus" -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=700000 -artifact_prefix=fuzz-findings/ \
  -print_final_stats=1
echo "fuzz: ${seconds}s done; findings (if any) in fuzz-findings/"
