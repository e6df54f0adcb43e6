#!/usr/bin/env bash
# Installs every Debian package wristssl needs to build, test, benchmark and run, then ONNX Runtime for the
# export tests from npm (tests/node). Idempotent: installs only what is missing; uses sudo only when not root.
# Usage: scripts/setup.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU) and a fast BLAS for it
  libgoogle-perftools-dev                     # tcmalloc: the allocator of the LibTorch programs
  libgloo-dev                                 # c10d's Gloo headers: distributed training on CPU
  libdcmtk-dev libopenjp2-7-dev               # DICOM (DCMTK) and JPEG 2000 fragments (OpenJPEG)
  libpng-dev libjpeg-dev zlib1g-dev libssl-dev
  nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-pil python3-pydicom python3-gdcm   # independent decoders for tests
  chromium                                    # headless render check of the HTML report
  libonnx-dev libprotobuf-dev python3-onnx    # ONNX export (C++ protobuf classes) and its checker
  nodejs npm                                  # ONNX Runtime (onnxruntime-node) runs the exported model
  libcpp-httplib-dev                          # the HTTP service (cpp-httplib with OpenSSL)
  dcmtk dicom3tools pixelmed-apps default-jre-headless   # DICOM node tests: storescp/storescu, dciodvfy, SR validator
  openssl                                     # the DICOM TLS test makes its CA and certificates
  orthanc curl                                # the DICOM node behind a real router (examples/orthanc)
  python3-torch python3-torchvision           # the exports checked in PyTorch; the Python peers of the benchmarks
)

missing=()
for p in "${packages[@]}"; do
  # NodeSource's nodejs bundles npm (and conflicts with Debian's npm package): a working npm will do.
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
else
  sudo=""
  if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node, pinned by tests/node/package-lock.json. --ignore-scripts: the CPU binding ships in the
# package (bin/napi-v6/linux/x64); its install script only fetches the CUDA extras. When the npm registry
# cannot be reached, setup says so loudly and goes on: everything builds and runs without it, and the two
# ONNX Runtime checks report themselves as skipped (ctest lists them) until `npm ci` succeeds.
if [[ -d tests/node/node_modules/onnxruntime-node ]]; then
  echo "setup: onnxruntime-node present"
else
  echo "setup: installing onnxruntime-node (npm ci in tests/node)"
  if ! (cd tests/node && npm ci --ignore-scripts --no-audit --no-fund); then
    echo "setup: WARNING: npm could not install onnxruntime-node; the ONNX Runtime export checks will be SKIPPED." >&2
    echo "setup: WARNING: fix the npm registry access, then run: (cd tests/node && npm ci --ignore-scripts)" >&2
  fi
fi
