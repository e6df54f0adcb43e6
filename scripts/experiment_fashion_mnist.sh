#!/usr/bin/env bash
# Experiment 1: does SimCLR pretraining give better frozen features than random initialisation when few
# labels are available? Fashion-MNIST (10 classes, Debian's dataset-fashion-mnist), 32 px:
#   1. SimCLR pretraining on the train part of a seeded split (val/test kept out);
#   2. linear probe (frozen backbone, head only) on 1%, 10% and 100% of the training labels, for the SimCLR
#      backbone and for a randomly initialised one; accuracy on the same held-out test part, with its
#      95% Wilson interval.
# Usage: scripts/experiment_fashion_mnist.sh [OUT=runs/fashion_mnist] [LIMIT=5000 images per IDX split]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fashion_mnist}
limit=${2:-5000}
bin=${WRISTSSL:-build/wristssl}
data=/usr/share/datasets/fashion-mnist
common=(--data "$data" --limit "$limit" --image-size 32 --seed 3 --cache-dir .wristssl-cache)
mkdir -p "$out"
# The split: made once by a probe-only run with 100% labels, reused by everything else.
"$bin" train "${common[@]}" --init random --out "$out/random_100" --probe-epochs 30 --finetune-epochs 0 \
  --batch-size 128 --lr-probe 0.1 --imbalance none
"$bin" pretrain "${common[@]}" --split "$out/random_100/split.json" --out "$out/simclr" --epochs 15 \
  --batch-size 128 --lr 0.1 --warmup-epochs 2 --temperature 0.2 --augment xray --knn-every 5 --knn-max 1000
for init in simclr random; do
  for pair in 0.01:1 0.1:10 1.0:100; do
    frac=${pair%%:*}
    name=${init}_${pair##*:}
    [[ $name == random_100 ]] && continue
    extra=()
    [[ $init == simclr ]] && extra=(--backbone "$out/simclr/backbone.pt")
    "$bin" train "${common[@]}" --init "$init" "${extra[@]}" --split "$out/random_100/split.json" \
      --out "$out/$name" --probe-epochs 30 --finetune-epochs 0 --batch-size 128 --lr-probe 0.1 --imbalance none \
      --label-fraction "$frac"
  done
done
echo "| labels | SimCLR probe accuracy (95% CI) | random-init probe accuracy (95% CI) |" > "$out/results.md"
echo "|---|---|---|" >> "$out/results.md"
for pct in 1 10 100; do
  row="| ${pct}% |"
  for init in simclr random; do
    "$bin" evaluate --run "$out/${init}_${pct}" --part test --no-report > "$out/${init}_${pct}/evaluate.txt"
    row+=" $(sed -n 's/^test: accuracy \([0-9.]*\) (95% CI \([0-9.]*\)-\([0-9.]*\)).*/\1 (\2-\3)/p' "$out/${init}_${pct}/evaluate.txt") |"
  done
  echo "$row" >> "$out/results.md"
done
cat "$out/results.md"
