#!/usr/bin/env bash
# Configures and builds wristssl in ./build (Release, Ninja). Extra arguments go to cmake's configure step.
# One build at a time: LibTorch translation units take about 1.5 GiB each.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${WRISTSSL_BUILD_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$jobs"
