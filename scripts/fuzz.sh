#!/usr/bin/env bash
# Fuzzes read_image with libFuzzer + ASan/UBSan. Usage: scripts/fuzz.sh [SECONDS=600] [JOBS=1]
# Seeds: every bundled PNG, JPEG and DICOM. Findings are written to fuzz-findings/ (crash-*, oom-*, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${2:-1}
command -v clang++ >/dev/null || { echo "fuzz.sh needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)"; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWRISTSSL_FUZZ=ON -DWRISTSSL_WITH_TORCH=OFF -DWRISTSSL_BUILD_TESTS=OFF -DWRISTSSL_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target read_image_fuzz
corpus=build-fuzz/corpus
mkdir -p "$corpus" fuzz-findings
find samples tests/fixtures -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.dcm' \) -size -600k -exec cp {} "$corpus/" \;
# malloc_limit: a hostile length field must not make any decoder ask for gigabytes.
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
  build-fuzz/fuzz/read_image_fuzz "$corpus" -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=700000 -artifact_prefix=fuzz-findings/ \
  -print_final_stats=1
echo "fuzz: ${seconds}s done; findings (if any) in fuzz-findings/"
