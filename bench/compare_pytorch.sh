#!/usr/bin/env bash
# Side-by-side SimCLR training throughput: wristssl (C++/LibTorch, build/bench/wristssl_bench_simclr) against
# a plain PyTorch Python SimCLR (bench/simclr_pytorch.py: torchvision ResNet-18, PIL transforms, DataLoader
# workers), on this machine, in one run. Runs are sequential (never two benchmarks at once).
#
#   bench/compare_pytorch.sh                       # sizes 224 and 512, batch 32, 6 timed steps
#   SIZES="224" STEPS=4 BATCH=32 bench/compare_pytorch.sh
#
# Environment:
#   SIZES    image sides, space separated            (default "224 512")
#   BATCH    images per step (x2 views)              (default 32)
#   STEPS    timed steps per run                     (default 6)
#   WARMUP   untimed steps of the Python runs        (default 1)
#   MATCHED  1: also run PyTorch fp32 with as many intra-op threads as wristssl uses, when PyTorch's
#            default differs (information; the targets use PyTorch's defaults)   (default 1)
#   PYTHON   interpreter with torch + torchvision    (default /usr/bin/python3)
#   BENCH    the C++ benchmark binary                (default build/bench/wristssl_bench_simclr)
#   CPP_TABLE  a saved output of the C++ benchmark to parse instead of running it (testing the parser)
#   PRETRAIN_DATA  a folder of at least 1,000 images for the `wristssl pretrain` row: the real command, one
#            epoch at the benchmark's size and batch, its logged images/s (default ../shared/data/fracatlas/images
#            when present; "" skips the row)
#   WRISTSSL the command-line program                (default build/wristssl)
#   PY_PRELOAD  a malloc library preloaded into PyTorch's best bf16 configuration for one more run, as PyTorch's
#            CPU tuning guide advises (information, beside the targets, which use PyTorch as users run it;
#            default: Debian's libtcmalloc_minimal.so.4, the allocator wristssl links, when present; "" skips)
#   LOG_DIR  where the raw outputs go                (default: a new directory under /tmp)
#
# Figures are views/s: 2 augmented views per image and step, i.e. 2 * BATCH * STEPS / seconds. "e2e" is the
# training loop fed by the data pipeline (decode/augment/collate + step); "model" is the step alone on a
# fixed synthetic batch. Targets (issue): wristssl default >= 2.0x PyTorch default; wristssl fp32 >= 1.2x
# PyTorch fp32 (equal precision), both on e2e.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SIZES="${SIZES:-224 512}"
BATCH="${BATCH:-32}"
STEPS="${STEPS:-6}"
WARMUP="${WARMUP:-1}"
MATCHED="${MATCHED:-1}"
PYTHON="${PYTHON:-/usr/bin/python3}"
BENCH="${BENCH:-build/bench/wristssl_bench_simclr}"
CPP_TABLE="${CPP_TABLE:-}"
LOG_DIR="${LOG_DIR:-$(mktemp -d /tmp/wristssl-compare.XXXXXX)}"
WRISTSSL="${WRISTSSL:-build/wristssl}"
if [[ -z "${PY_PRELOAD+x}" ]]; then
  PY_PRELOAD=""
  for L in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4; do
    [[ -f $L ]] && { PY_PRELOAD="$L"; break; }
  done
fi
if [[ -z "${PRETRAIN_DATA+x}" ]]; then
  PRETRAIN_DATA=""
  [[ -d ../shared/data/fracatlas/images ]] && PRETRAIN_DATA="$(cd ../shared/data/fracatlas/images && pwd)"
fi
mkdir -p "$LOG_DIR"
PY_SCRIPT="bench/simclr_pytorch.py"

die() { echo "compare_pytorch: $*" >&2; exit 1; }

if [[ -z "$CPP_TABLE" && ! -x "$BENCH" ]]; then
  die "$BENCH not found: build it first (cmake --build build --target wristssl_bench_simclr)"
fi
[[ -n "$CPP_TABLE" && ! -r "$CPP_TABLE" ]] && die "cannot read CPP_TABLE=$CPP_TABLE"
"$PYTHON" -c 'import torch, torchvision' 2>/dev/null || die "$PYTHON has no torch/torchvision"

# Runs a command, its output to a log file; on failure shows the log's tail and exits non-zero.
run_logged() {
  local log="$1"
  shift
  echo "\$ $*" | tee -a "$LOG_DIR/commands.txt"
  if ! "$@" >"$log" 2>&1; then
    echo "---- last lines of $log ----" >&2
    tail -n 30 "$log" >&2
    die "run failed: $*"
  fi
}

# Field KEY=VALUE of the RESULT line in a Python log.
py_field() { grep '^RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# Column of the C++ table row (size, precision, memory format): 4 = model, 5 = e2e.
cpp_field() {
  awk -v s="$2" -v p="$3" -v f="$4" -v c="$5" \
    '$1 == s && $2 == p && $3 == f && NF >= 9 { v = $c } END { if (v != "") print v }' "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() {  # ratio target
  awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print ""; else if (r + 0 >= t + 0) print "PASS"; else print "FAIL" }'
}

CORES="$(nproc)"
CPU_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
CMD="SIZES=\"$SIZES\" BATCH=$BATCH STEPS=$STEPS WARMUP=$WARMUP MATCHED=$MATCHED PY_PRELOAD=$PY_PRELOAD${CPP_TABLE:+ CPP_TABLE=$CPP_TABLE} bench/compare_pytorch.sh"
TORCH_VERSIONS="$("$PYTHON" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")')"

echo "wristssl vs plain PyTorch SimCLR, $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "cpu: $CPU_MODEL, $CORES core(s); python: $PYTHON ($TORCH_VERSIONS)"
echo "command: $CMD"
echo "raw outputs: $LOG_DIR"
echo

SUMMARY="$LOG_DIR/summary.txt"
: >"$SUMMARY"

for S in $SIZES; do
  # --- Python: defaults (fp32, contiguous), bf16, bf16 channels-last -------------------------------------
  PY_COMMON=("$PYTHON" "$PY_SCRIPT" --size "$S" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP")
  run_logged "$LOG_DIR/py_${S}_fp32.log" "${PY_COMMON[@]}"
  grep '^RESULT ' "$LOG_DIR/py_${S}_fp32.log"
  run_logged "$LOG_DIR/py_${S}_bf16.log" "${PY_COMMON[@]}" --precision bf16
  grep '^RESULT ' "$LOG_DIR/py_${S}_bf16.log"
  run_logged "$LOG_DIR/py_${S}_bf16_cl.log" "${PY_COMMON[@]}" --precision bf16 --channels-last
  grep '^RESULT ' "$LOG_DIR/py_${S}_bf16_cl.log"

  # --- C++ ---------------------------------------------------------------------------------------------------
  CPP_LOG="$LOG_DIR/cpp_${S}.log"
  if [[ -n "$CPP_TABLE" ]]; then
    echo "(C++ table read from $CPP_TABLE)"
    cp "$CPP_TABLE" "$CPP_LOG"
  else
    run_logged "$CPP_LOG" "$BENCH" --sizes "$S" --batch "$BATCH" --steps "$STEPS" --precision all
  fi
  awk -v s="$S" '$1 == "size" || $1 == s' "$CPP_LOG"
  CPP_THREADS="$(sed -n 's/.*: \([0-9][0-9]*\) thread(s).*/\1/p' "$CPP_LOG" | head -n 1)"
  CPP_THREADS="${CPP_THREADS:-$CORES}"
  # The tool's default on a CPU with native bf16: bf16 autocast + channels-last (fp32 + channels-last without).
  if grep -q 'native bf16: no' "$CPP_LOG"; then DEF_PREC=fp32; else DEF_PREC=bf16; fi

  PY_THREADS="$(py_field "$LOG_DIR/py_${S}_fp32.log" threads)"

  # --- PyTorch bf16 at its best: both layouts, at its default thread count and at wristssl's -------------------
  BF16_LOGS=("$LOG_DIR/py_${S}_bf16.log" "$LOG_DIR/py_${S}_bf16_cl.log")
  if [[ "$PY_THREADS" != "$CPP_THREADS" ]]; then
    run_logged "$LOG_DIR/py_${S}_bf16_t${CPP_THREADS}.log" "${PY_COMMON[@]}" --precision bf16 --threads "$CPP_THREADS"
    grep '^RESULT ' "$LOG_DIR/py_${S}_bf16_t${CPP_THREADS}.log"
    run_logged "$LOG_DIR/py_${S}_bf16_cl_t${CPP_THREADS}.log" "${PY_COMMON[@]}" --precision bf16 --channels-last \
      --threads "$CPP_THREADS"
    grep '^RESULT ' "$LOG_DIR/py_${S}_bf16_cl_t${CPP_THREADS}.log"
    BF16_LOGS+=("$LOG_DIR/py_${S}_bf16_t${CPP_THREADS}.log" "$LOG_DIR/py_${S}_bf16_cl_t${CPP_THREADS}.log")
  fi

  # --- Optional: PyTorch fp32 with wristssl's thread count -------------------------------------------------
  MATCHED_LOG=""
  if [[ "$MATCHED" == 1 && "$PY_THREADS" != "$CPP_THREADS" ]]; then
    MATCHED_LOG="$LOG_DIR/py_${S}_fp32_t${CPP_THREADS}.log"
    run_logged "$MATCHED_LOG" "${PY_COMMON[@]}" --threads "$CPP_THREADS"
    grep '^RESULT ' "$MATCHED_LOG"
  fi
  echo

  # --- Rows ------------------------------------------------------------------------------------------------------
  W_DEF_M="$(cpp_field "$CPP_LOG" "$S" "$DEF_PREC" channels-last 4)"
  W_DEF_E="$(cpp_field "$CPP_LOG" "$S" "$DEF_PREC" channels-last 5)"
  W_32_M="$(cpp_field "$CPP_LOG" "$S" fp32 channels-last 4)"
  W_32_E="$(cpp_field "$CPP_LOG" "$S" fp32 channels-last 5)"
  W_16_M="$(cpp_field "$CPP_LOG" "$S" bf16 channels-last 4)"
  W_16_E="$(cpp_field "$CPP_LOG" "$S" bf16 channels-last 5)"
  [[ -n "$W_DEF_E" && -n "$W_32_E" ]] || die "no size-$S rows in the C++ table ($CPP_LOG)"

  P_32_M="$(py_field "$LOG_DIR/py_${S}_fp32.log" model_views_per_s)"
  P_32_E="$(py_field "$LOG_DIR/py_${S}_fp32.log" e2e_views_per_s)"
  P_16C_E="$(py_field "$LOG_DIR/py_${S}_bf16.log" e2e_views_per_s)"
  P_16L_E="$(py_field "$LOG_DIR/py_${S}_bf16_cl.log" e2e_views_per_s)"
  [[ -n "$P_32_E" && -n "$P_16C_E" && -n "$P_16L_E" ]] || die "missing RESULT line in a size-$S Python log"
  P_16_LOG=""; P_16_BEST=0
  for L in "${BF16_LOGS[@]}"; do
    E="$(py_field "$L" e2e_views_per_s)"
    if awk -v a="$E" -v b="$P_16_BEST" 'BEGIN { exit !(a + 0 > b + 0) }'; then P_16_LOG="$L"; P_16_BEST="$E"; fi
  done
  if [[ "$(py_field "$P_16_LOG" channels_last)" == 1 ]]; then P_16_LAYOUT=channels-last; else P_16_LAYOUT=contiguous; fi
  P_16_M="$(py_field "$P_16_LOG" model_views_per_s)"
  P_16_E="$(py_field "$P_16_LOG" e2e_views_per_s)"
  PRE_LOG=""
  if [[ -n "$PY_PRELOAD" && -z "$CPP_TABLE" ]]; then
    PRE_LOG="$LOG_DIR/py_${S}_bf16_best_preload.log"
    PRE_ARGS=(--precision bf16 --threads "$(py_field "$P_16_LOG" threads)")
    [[ "$P_16_LAYOUT" == channels-last ]] && PRE_ARGS+=(--channels-last)
    run_logged "$PRE_LOG" env LD_PRELOAD="$PY_PRELOAD" "${PY_COMMON[@]}" "${PRE_ARGS[@]}"
    grep '^RESULT ' "$PRE_LOG"
  fi

  # --- wristssl pretrain itself: one epoch over PRETRAIN_DATA, as logged --------------------------------------
  PR_VIEWS=""; PR_WALL=""; PR_IMAGES=""; PR_THREADS=""
  if [[ -n "$PRETRAIN_DATA" && -z "$CPP_TABLE" ]]; then
    PR_OUT="$LOG_DIR/pretrain_${S}"
    run_logged "$LOG_DIR/pretrain_${S}.log" "$WRISTSSL" pretrain --data "$PRETRAIN_DATA" --image-size "$S" \
      --batch-size "$BATCH" --epochs 1 --cache-dir "$LOG_DIR/cache" --out "$PR_OUT"
    read -r PR_VIEWS PR_WALL PR_IMAGES PR_THREADS < <("$PYTHON" -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][-1]
c = json.load(open(sys.argv[2]))["resolved"]
wall = r["seconds"] + r.get("knn_seconds", 0) + r.get("checkpoint_seconds", 0)
print("%.2f %.2f %d %d" % (2 * r["images_per_s"], 2 * r["images_per_s"] * r["seconds"] / wall, c["pretrain_images"],
                          c["threads"]))
' "$PR_OUT/metrics.jsonl" "$PR_OUT/config.json")
    ((PR_IMAGES >= 1000)) || echo "note: PRETRAIN_DATA has $PR_IMAGES readable images; the target asks for 1,000+"
    echo "wristssl pretrain: $PR_VIEWS views/s logged over $PR_IMAGES images ($PR_WALL with monitor and checkpoint)"
  fi

  R_DEF="$(ratio "$W_DEF_E" "$P_32_E")"
  R_32="$(ratio "$W_32_E" "$P_32_E")"
  R_16="$(ratio "$W_16_E" "$P_16_E")"
  {
    echo "size $S, batch $BATCH (x2 views), $STEPS timed steps; views/s"
    printf '  %-46s %12s %12s %8s\n' "" "model" "e2e" "threads"
    printf '  %-46s %12.1f %12.1f %8s\n' "wristssl default ($DEF_PREC, channels-last)" "$W_DEF_M" "$W_DEF_E" "$CPP_THREADS"
    printf '  %-46s %12.1f %12.1f %8s\n' "wristssl fp32 (channels-last)" "$W_32_M" "$W_32_E" "$CPP_THREADS"
    printf '  %-46s %12.1f %12.1f %8s\n' "pytorch default (fp32, contiguous)" "$P_32_M" "$P_32_E" "$PY_THREADS"
    printf '  %-46s %12.1f %12.1f %8s\n' "pytorch bf16 (best: $P_16_LAYOUT)" "$P_16_M" "$P_16_E" \
      "$(py_field "$P_16_LOG" threads)"
    if [[ -n "$PRE_LOG" ]]; then
      printf '  %-46s %12.1f %12.1f %8s\n' "pytorch bf16 best, $(basename "$PY_PRELOAD" | sed 's/^lib//; s/_minimal//; s/\.so.*//') preloaded" \
        "$(py_field "$PRE_LOG" model_views_per_s)" "$(py_field "$PRE_LOG" e2e_views_per_s)" "$(py_field "$PRE_LOG" threads)"
    fi
    if [[ -n "$MATCHED_LOG" ]]; then
      printf '  %-46s %12.1f %12.1f %8s\n' "pytorch fp32, contiguous, --threads $CPP_THREADS" \
        "$(py_field "$MATCHED_LOG" model_views_per_s)" "$(py_field "$MATCHED_LOG" e2e_views_per_s)" "$CPP_THREADS"
    fi
    printf '  %-46s %12s %12s %8s\n' "ratio (e2e target)" "model" "e2e" ""
    printf '  %-46s %12s %12s %8s\n' "wristssl default / pytorch default (>= 2.0)" \
      "$(ratio "$W_DEF_M" "$P_32_M")" "$R_DEF" "$(verdict "$R_DEF" 2.0)"
    printf '  %-46s %12s %12s %8s\n' "wristssl fp32 / pytorch fp32 (>= 1.2)" \
      "$(ratio "$W_32_M" "$P_32_M")" "$R_32" "$(verdict "$R_32" 1.2)"
    printf '  %-46s %12s %12s %8s\n' "wristssl bf16 / pytorch bf16 best (>= 1.2)" "$(ratio "$W_16_M" "$P_16_M")" "$R_16" \
      "$(verdict "$R_16" 1.2)"
    if [[ -n "$MATCHED_LOG" ]]; then
      printf '  %-46s %12s %12s %8s\n' "wristssl fp32 / pytorch fp32 ${CPP_THREADS} threads (info)" \
        "$(ratio "$W_32_M" "$(py_field "$MATCHED_LOG" model_views_per_s)")" \
        "$(ratio "$W_32_E" "$(py_field "$MATCHED_LOG" e2e_views_per_s)")" ""
    fi
    if [[ -n "$PRE_LOG" ]]; then
      printf '  %-46s %12s %12s %8s\n' "wristssl bf16 / pytorch bf16 preloaded (info)" \
        "$(ratio "$W_16_M" "$(py_field "$PRE_LOG" model_views_per_s)")" \
        "$(ratio "$W_16_E" "$(py_field "$PRE_LOG" e2e_views_per_s)")" ""
    fi
    if [[ -n "$PR_VIEWS" ]]; then
      printf '  %-46s %12s %12.1f %8s\n' "wristssl pretrain, $PR_IMAGES images (logged)" "" "$PR_VIEWS" "$PR_THREADS"
      printf '  %-46s %12s %12.1f %8s\n' "  the same epoch with its monitor and checkpoint" "" "$PR_WALL" ""
      printf '  %-46s %12s %12s %8s\n' "wristssl pretrain / benchmark e2e (>= 0.90)" "" "$(ratio "$PR_VIEWS" "$W_DEF_E")" \
        "$(verdict "$(ratio "$PR_VIEWS" "$W_DEF_E")" 0.90)"
    fi
    echo
  } >>"$SUMMARY"
done

echo "==================================================================================================="
echo "wristssl vs plain PyTorch SimCLR, $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "cpu: $CPU_MODEL, $CORES core(s); $TORCH_VERSIONS; DataLoader workers 2"
echo "threads: wristssl = its default (all cores, set explicitly); pytorch = torch.get_num_threads() default"
echo "command: $CMD"
echo
cat "$SUMMARY"
echo "views/s = 2 augmented views per image and step. e2e = data pipeline + training step; model = step alone."
echo "wristssl fp32/bf16 rows are its default layout (channels-last); full C++ tables and Python logs: $LOG_DIR"
