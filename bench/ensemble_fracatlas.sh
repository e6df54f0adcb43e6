#!/usr/bin/env bash
# Does an ensemble of a study arm's fold models beat its single members? Each fold model of ARM (from
# `wristssl study --config configs/study_fracatlas_accuracy.json`, trained on 4/5 of the 1,050 FracAtlas
# hands) and their 5-member ensemble score the same 2,440 FracAtlas images of the other regions (the
# study's pretraining pool after the same filter; no duplicate cluster of it holds a hand, so no model saw
# any of them), and the ensemble is compared with each member by DeLong's paired test and a bootstrap
# grouped by duplicate cluster. Run alone on the machine, from the repository root, with ../shared/data.
# Usage: [ARM=scratch] [STUDY=runs/study-fracatlas-accuracy] [OUT=runs/ensemble-fracatlas] bench/ensemble_fracatlas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
arm=${ARM:-scratch} study=${STUDY:-runs/study-fracatlas-accuracy} out=${OUT:-runs/ensemble-fracatlas}/${ARM:-scratch}
data=(--data ../shared/data/fracatlas/labels.csv --group-column dup_cluster
      --where hand=0 hardware=0 jpeg_truncated=0 cross_label_conflict=0)
mkdir -p "$out"
echo "# $(date -u +%FT%TZ), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; arm $arm of $study"
members=()
for run in "$study"/cv/"$arm"/seed1-fold*-100pct; do members+=("$run/model.wristssl"); done
build/wristssl bundle --members "${members[@]}" --name "$arm-5folds" --out "$out/ensemble.wristssl"
for k in "${!members[@]}"; do
  build/wristssl evaluate --model "${members[$k]}" "${data[@]}" --out "$out/member$k" --no-report \
      --bootstrap 200 2>/dev/null >/dev/null
done
start=$(date +%s.%N)
build/wristssl evaluate --model "$out/ensemble.wristssl" "${data[@]}" --out "$out/ensemble" --no-report \
    --bootstrap 200 2>/dev/null >/dev/null
echo "ensemble scored in $(echo "$(date +%s.%N) - $start" | bc) s"
# evaluate's score files: path,group,label,score,...; the score is the calibrated probability.
for k in "${!members[@]}"; do
  build/wristssl metrics --scores "$out/ensemble/scores_external.csv" \
      --versus "$out/member$k/scores_external.csv" --bootstrap 2000 --json "$out/versus$k.json" \
      | sed -n '/^Paired against/,$p'
done
