#!/usr/bin/env bash
# kill -9 a classifier run (`wristssl train`) twice at arbitrary points, rerun the same command each time, and
# check that it ends as an uninterrupted run does: the same best weights (model.pt), the same epoch rows
# (every column but the time) and the same threshold. Its epochs are far shorter than a checkpoint takes to
# write, so checkpoints are sparse (kept near 5% of the training time) and each kill lands epochs after the
# last one: the resumed run replays them.
# Usage: train_kill_resume_test.sh path/to/wristssl
set -euo pipefail
bin=$1
data=/usr/share/datasets/fashion-mnist
[[ -d $data ]] || { echo "SKIP: dataset-fashion-mnist not installed"; exit 77; }
tmp=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
args=(--data "$data" --limit 64 --image-size 28 --init random --probe-epochs 0 --finetune-epochs 14
      --batch-size 16 --lr-finetune 0.05 --workers 1 --seed 3 --cache-dir "$tmp/cache")
# model.pt's header holds the SHA-256 of its body (weights and config, which names the run folder: both runs
# use the same --out, the first moved aside when it ends), at bytes 12-75.
weights() { head -c 76 "$1/model.pt" | tail -c 64; }
rows() { /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line); r.pop("seconds", None); print(json.dumps(r, sort_keys=True))' "$1/metrics.jsonl"; }
threshold() { /usr/bin/python3 -c '
import json, sys
t = json.load(open(sys.argv[1])); print(t["best_epoch"], t["val_accuracy"])' "$1/threshold.json"; }

"$bin" --threads 2 train "${args[@]}" --out "$tmp/run" >"$tmp/whole.log" 2>&1 || { cat "$tmp/whole.log"; exit 1; }
mv "$tmp/run" "$tmp/whole"
want=$(weights "$tmp/whole")
[[ -n $want ]] || { echo "FAIL: no model.pt from the uninterrupted run"; exit 1; }
epochs=$(grep -c . "$tmp/whole/metrics.jsonl")

kills=0
for at in 3 8; do
  "$bin" --threads 2 train "${args[@]}" --out "$tmp/run" >>"$tmp/killed.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do
    n=0
    [[ -f $tmp/run/metrics.jsonl ]] && n=$(grep -c . "$tmp/run/metrics.jsonl" || true)
    ((n >= at)) && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
  done
  sleep "0.$((RANDOM % 3))"
  if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $pid 2>/dev/null || true
  echo "killed with $n epochs logged"
done
"$bin" --threads 2 train "${args[@]}" --out "$tmp/run" >>"$tmp/killed.log" 2>&1 || { cat "$tmp/killed.log"; exit 1; }
got=$(weights "$tmp/run")
echo "uninterrupted $want ($epochs epochs)"
echo "killed twice  $got"
((kills == 2)) || { echo "FAIL: a run ended before it could be killed ($kills kills)"; exit 1; }
grep -q "resuming" "$tmp/killed.log" || { echo "FAIL: no run resumed from a checkpoint"; exit 1; }
[[ $got == "$want" ]] || { echo "FAIL: best weights differ after kill -9 and resume"; exit 1; }
diff <(rows "$tmp/whole") <(rows "$tmp/run") || { echo "FAIL: epoch rows differ"; exit 1; }
diff <(threshold "$tmp/whole") <(threshold "$tmp/run") || { echo "FAIL: threshold differs"; exit 1; }
echo PASS
