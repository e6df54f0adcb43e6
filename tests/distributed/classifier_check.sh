#!/usr/bin/env bash
# The classifier and evaluation distributed: `wristssl launch` of 2 ranks trains a classifier (probe on
# gathered embeddings, then data-parallel fine-tuning with --sync-bn) and writes one run folder with a model
# bundle; then `evaluate --model` under 2 ranks (each scores half, the scores are gathered) must give the same
# scores (1e-5) and metrics as one process. Usage: classifier_check.sh WRISTSSL. Exit 77 without Gloo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1
"$wristssl" --version | grep -q "gloo" || { echo "skip: this build has no Gloo"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "classifier_check: $*"; tail -40 "$dir"/*.log; exit 1; }
data="$here/../../samples/fracatlas/labels.csv"
"$wristssl" launch --nproc 2 --threads 1 -- "$wristssl" train --data "$data" --group-column dup_cluster --init random \
  --image-size 64 --probe-epochs 2 --finetune-epochs 2 --batch-size 8 --sync-bn \
  --cache-dir "$dir/cache" --out "$dir/cls" 2>"$dir/train.log" || fail "distributed training failed"
grep -q "2 ranks x batch 8 = global batch 16 when fine-tuning, batch norm synchronised" "$dir/train.log" \
  || fail "no distributed fine-tuning line"
[[ -f "$dir/cls/model.wristssl" && -f "$dir/cls/threshold.json" ]] || fail "rank 0 wrote no bundle"
[[ $(grep -c '"phase":"finetune"' "$dir/cls/metrics.jsonl") -eq 2 ]] || fail "not 2 fine-tuning epochs logged once each"
"$wristssl" --threads 1 evaluate --model "$dir/cls/model.wristssl" --data "$data" --cache-dir "$dir/cache" \
  --out "$dir/one" 2>"$dir/eval1.log" || fail "evaluate failed"
"$wristssl" launch --nproc 2 --threads 1 -- "$wristssl" evaluate --model "$dir/cls/model.wristssl" --data "$data" \
  --cache-dir "$dir/cache" --out "$dir/two" 2>"$dir/eval2.log" || fail "distributed evaluate failed"
/usr/bin/python3 - "$dir/one" "$dir/two" <<'PY'
import csv, json, sys
one, two = sys.argv[1], sys.argv[2]
a = {r["path"]: float(r["score"]) for r in csv.DictReader(open(f"{one}/scores_external.csv"))}
b = {r["path"]: float(r["score"]) for r in csv.DictReader(open(f"{two}/scores_external.csv"))}
assert a.keys() == b.keys() and len(a) > 100, (len(a), len(b))
worst = max(abs(a[k] - b[k]) for k in a)
ma = json.load(open(f"{one}/metrics_external.json"))
mb = json.load(open(f"{two}/metrics_external.json"))
print(f"{len(a)} images; largest score difference {worst:.2e}; AUROC {ma['metrics']['auroc']['value']:.6f} vs {mb['metrics']['auroc']['value']:.6f}")
sys.exit(0 if worst < 1e-5 and abs(ma['metrics']['auroc']['value'] - mb['metrics']['auroc']['value']) < 1e-6 else 1)
PY
echo "classifier_check: passed"
