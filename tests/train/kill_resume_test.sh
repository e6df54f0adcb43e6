#!/usr/bin/env bash
# kill -9 a pretraining run twice at arbitrary steps, rerun the same command each time, and check that
# the final backbone has exactly the weights of an uninterrupted run (same thread count).
# Usage: kill_resume_test.sh path/to/wristssl
set -euo pipefail
bin=$1
data=/usr/share/datasets/fashion-mnist
[[ -d $data ]] || { echo "SKIP: dataset-fashion-mnist not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(--data "$data" --limit 96 --image-size 28 --epochs 3 --batch-size 32 --lr 0.05 --knn-every 0
      --warmup-epochs 1 --cache-dir "$tmp/cache")
fingerprint() { sed -n 's/.*"backbone_sha256_of_weights": "\([0-9a-f]*\)".*/\1/p' "$1/summary.json"; }

"$bin" --threads 2 pretrain "${args[@]}" --out "$tmp/whole" >/dev/null 2>&1
want=$(fingerprint "$tmp/whole")
[[ -n $want ]] || { echo "FAIL: no fingerprint from the uninterrupted run"; exit 1; }

# 6 steps per epoch, 18 in all: kill after >= 4 and then after >= 11 logged steps.
for at in 4 11; do
  "$bin" --threads 2 pretrain "${args[@]}" --out "$tmp/killed" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    n=0
    [[ -f $tmp/killed/steps.csv ]] && n=$(($(wc -l < "$tmp/killed/steps.csv") - 1))
    ((n >= at)) && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  # steps.csv is flushed at checkpoints, so the threshold is seen at an epoch boundary: wait a random
  # fraction of a second more so the kill lands somewhere inside the next epoch.
  sleep "0.$((RANDOM % 10))"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  echo "killed with $n steps logged"
done
"$bin" --threads 2 pretrain "${args[@]}" --out "$tmp/killed" >/dev/null 2>&1
got=$(fingerprint "$tmp/killed")
lines=$(($(wc -l < "$tmp/killed/steps.csv") - 1))
echo "uninterrupted $want"
echo "killed twice  $got ($lines step lines)"
[[ $got == "$want" ]] || { echo "FAIL: weights differ after kill -9 and resume"; exit 1; }
[[ $lines == 18 ]] || { echo "FAIL: steps.csv has $lines step lines, expected 18"; exit 1; }
echo PASS
