#!/usr/bin/env bash
# `wristssl study --quick` end to end on the bundled sample, then twice more: a rerun redoes nothing, and
# the folder is checked by study_check.py (folds, pretraining pool, runs, table, page, bundles).
set -euo pipefail
cli=$1
cd "$(dirname "$0")/../.."
out=$(mktemp -d /tmp/wristssl-study-XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
"$cli" study --quick --out "$out/study" --threads 2 > "$out/log.txt" 2>&1 || { tail -40 "$out/log.txt"; exit 1; }
echo "study --quick: $(( $(date +%s) - start )) s"
/usr/bin/python3 tests/study/study_check.py "$out/study"
# A finished run keeps its weights (model.pt, the bundle) but not the checkpoint that only served to resume it.
left=$({ find "$out/study/cv" -name checkpoint.pt
         find "$out/study" -mindepth 2 -maxdepth 2 -name checkpoint.pt -not -path "*/pretrain-*"; } | head -3)
[[ -z $left ]] || { echo "FAIL: finished runs kept their checkpoints: $left"; exit 1; }
n=$(find "$out/study/cv" -name model.wristssl | wc -l)
((n > 0)) || { echo "FAIL: no run bundles under cv/"; exit 1; }
# Resumable: the same command again trains nothing and gives the same table.
cp "$out/study/study.md" "$out/first.md"
"$cli" study --quick --out "$out/study" --threads 2 > "$out/log2.txt" 2>&1 || { tail -40 "$out/log2.txt"; exit 1; }
if grep -q "study: run " "$out/log2.txt"; then echo "FAIL: the rerun trained again"; exit 1; fi
cmp "$out/first.md" "$out/study/study.md" || { echo "FAIL: the rerun changed the table"; exit 1; }
echo "rerun: nothing redone, same table"
