#!/usr/bin/env bash
# Distributed SimCLR on one machine: 1 process x 2 threads (global batch 2B) against `wristssl launch` of
# 2 processes x 1 thread (batch B each, the same global batch), on the same data and settings. Prints views/s of
# the last epoch (images/s x 2 views), and the 2-process run's time and volume in all-reduce and all-gather
# per step (rank 0's, from metrics.jsonl). Usage: bench/dist_bench.sh [DATA] [EPOCHS] [BATCH_PER_RANK] [CROP]
# (defaults: the bundled FracAtlas sample, 4 epochs, 16, 112). Run it with the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-samples/fracatlas/labels.csv} epochs=${2:-4} batch=${3:-16} crop=${4:-112}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(pretrain --data "$data" --image-size $((crop + crop / 8)) --crop-size "$crop" --epochs "$epochs"
        --knn-every 0 --cache-dir "$dir/cache" --seed 1)
lscpu | sed -n 's/^Model name: *//p'
build/wristssl --threads 2 "${common[@]}" --batch-size $((2 * batch)) --out "$dir/one" 2>"$dir/one.log"
build/wristssl launch --nproc 2 --threads 1 -- build/wristssl "${common[@]}" --batch-size "$batch" \
  --out "$dir/two" 2>"$dir/two.log"
build/wristssl launch --nproc 2 --threads 1 -- build/wristssl "${common[@]}" --batch-size "$batch" --sync-bn \
  --out "$dir/sync" 2>"$dir/sync.log"
/usr/bin/python3 - "$dir" "$batch" "$crop" <<'PY'
import json, sys
d, batch, crop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def last(run):
    rows = [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl") if '"images_per_s"' in l]
    return rows[-1]
print(f"crop {crop} px, global batch {2 * batch}, last epoch:")
print("| configuration | views/s | all-reduce ms/step | all-gather ms/step | all-reduce MB/step |")
print("|---|---|---|---|---|")
for run, name in (("one", "1 process x 2 threads"), ("two", "2 processes x 1 thread"),
                  ("sync", "2 processes x 1 thread, --sync-bn")):
    m = last(run)
    c, v = m.get("comm_ms_per_step", {}), m.get("comm_mb_per_step", {})
    fmt = lambda x: f"{x:.1f}" if isinstance(x, (int, float)) else "-"
    print(f"| {name} | {2 * m['images_per_s']:.1f} | {fmt(c.get('all_reduce'))} | {fmt(c.get('all_gather'))} | "
          f"{fmt(v.get('all_reduce'))} |")
PY
