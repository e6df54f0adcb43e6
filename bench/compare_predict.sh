#!/usr/bin/env bash
# `wristssl predict` against its Python peer (the TorchScript export in Debian's PyTorch) on the same
# folder, same threads, one after the other on an otherwise idle machine; plus single-image latency.
# Usage: [SIZE=512] [THREADS=2] [IMAGES=64] [PRECISION=fp32] bench/compare_predict.sh
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE:-512} threads=${THREADS:-$(nproc)} images=${IMAGES:-64} precision=${PRECISION:-fp32}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "# $(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
build/bench/wristssl_bench_predict --size "$size" --threads "$threads" --folder-images "$images" \
    --precision "$precision" --out "$dir" 2>/dev/null
echo
echo "Python peer (torch.jit.load of the TorchScript export, PIL + DataLoader with 2 workers, batch 16):"
/usr/bin/python3 bench/predict_pytorch.py "$dir" "$threads" 16
