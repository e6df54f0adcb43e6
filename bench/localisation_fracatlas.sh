#!/usr/bin/env bash
# Where the fracture is, out of fold on the 1,050 FracAtlas hands: each fold model of the accuracy study
# (`wristssl study --config configs/study_fracatlas_accuracy.json`, 100% of the training labels) scores its
# own test fold with `wristssl evaluate --run ... --boxes` (boxes_test.csv per fold: the decoded boxes,
# Grad-CAM's peak and FracAtlas's boxes), and `wristssl metrics --boxes` pools the five folds: hit rate of
# the boxes and of Grad-CAM (paired), AP@0.5 and FROC, intervals by bootstrap over duplicate clusters. The
# test folds' boxes never reached training (the study's folds). Run alone on the machine, from the
# repository root, with ../shared/data.
# Usage: [ARMS="fine-box scratch"] [STUDY=runs/study-fracatlas-accuracy] bench/localisation_fracatlas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
study=${STUDY:-runs/study-fracatlas-accuracy}
boxes=../shared/data/fracatlas/annotations/yolo
echo "# $(date -u +%FT%TZ), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $study"
for arm in ${ARMS:-fine-box scratch}; do
  files=()
  start=$(date +%s)
  for run in "$study"/cv/"$arm"/seed1-fold*-100pct; do
    build/wristssl evaluate --run "$run" --part test --boxes "$boxes" --no-report --bootstrap 200 \
        >/dev/null 2>"$run/evaluate_boxes.log"
    files+=("$run/boxes_test.csv")
  done
  echo "## $arm: 5 folds evaluated in $(( $(date +%s) - start )) s"
  build/wristssl metrics --boxes "${files[@]}" --bootstrap 2000 --seed 1 \
      --json "$study/localisation-$arm.json" | sed 1d
done
