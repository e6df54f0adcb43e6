#!/usr/bin/env bash
# `wristssl predict` against its Python peer (the TorchScript export of the same bundle in Debian's
# PyTorch: torch.jit.load, PIL decoding in DataLoader workers), on the same folder with the same threads,
# alternating, on an otherwise idle machine; plus single-image latency. This machine's speed drifts by
# +-20% over minutes, so only figures from one run are compared.
# Usage: [SIZE=512] [THREADS=2] [IMAGES=64] [ROUNDS=3] [PRECISION=fp32] bench/compare_predict.sh
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE:-512} threads=${THREADS:-$(nproc)} images=${IMAGES:-64} rounds=${ROUNDS:-3} precision=${PRECISION:-fp32}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "# $(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $threads threads"
build/bench/wristssl_bench_predict --size "$size" --threads "$threads" --folder-images "$images" \
    --precision "$precision" --out "$dir" 2>/dev/null
now() { date +%s.%N; }
echo
echo "Whole commands on the folder of $images images (process start to exit, model loading included), $rounds rounds:"
for r in $(seq "$rounds"); do
  t0=$(now)
  build/wristssl --threads "$threads" predict --model "$dir/model.wristssl" "$dir/images" --precision "$precision" \
      --csv "$dir/out.csv" 2>/dev/null
  t1=$(now)
  peer=$(/usr/bin/python3 bench/predict_pytorch.py "$dir" "$threads" 1 once)
  t2=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$images" -v r="$r" -v peer="$peer" 'BEGIN {
    printf "round %d: wristssl predict %.2f s (%.2f images/s); Python peer %.2f s (%.2f images/s); ratio %.2fx\n",
           r, b - a, n / (b - a), c - b, n / (c - b), (c - b) / (b - a); print "  peer: " peer }'
done
echo
echo "Python peer in-process after a warm-up pass (no start-up), batch 1 and 16:"
/usr/bin/python3 bench/predict_pytorch.py "$dir" "$threads" 1
/usr/bin/python3 bench/predict_pytorch.py "$dir" "$threads" 16
