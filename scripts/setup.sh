#!/usr/bin/env bash
# Installs every Debian package wristssl needs to build, test, benchmark and run. Idempotent: installs only
# what is missing; uses sudo only when not root. Usage: scripts/setup.sh
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU) and a fast BLAS for it
  libdcmtk-dev libopenjp2-7-dev               # DICOM (DCMTK) and JPEG 2000 fragments (OpenJPEG)
  libpng-dev libjpeg-dev zlib1g-dev libssl-dev
  nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-pil python3-pydicom python3-gdcm   # independent decoders for tests
  chromium                                    # headless render check of the HTML report
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
