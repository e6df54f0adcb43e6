#!/usr/bin/env bash
# Distributed failures end the job with a clear message, and the checkpoint stays the last good one:
# 1. `wristssl launch` of 2 ranks; after the first epoch's checkpoint, rank 1 is killed with kill -9: launch must
#    end (non-zero, naming the rank and the signal) well within the timeout, and rerunning the same command
#    resumes from the checkpoint and finishes.
# 2. Two processes started by hand (as torchrun or SLURM would): rank 1 is killed with kill -9; rank 0 must
#    end on its own with an error within --dist-timeout.
# 3. Bad set-ups: RANK >= WORLD_SIZE, MASTER_PORT missing, ranks with different options, the port in use.
# Usage: failure_check.sh WRISTSSL. Exit 77 without Gloo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1
"$wristssl" --version | grep -q "gloo" || { echo "skip: this build has no Gloo"; exit 77; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "failure_check: $*"; for f in "$dir"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
common=(pretrain --data "$here/../../samples/fracatlas/labels.csv" --image-size 64 --crop-size 56 --batch-size 8
        --lr 0.05 --warmup-epochs 0 --precision fp32 --knn-every 0 --workers 1 --cache-dir "$dir/cache" --dist-timeout 20)

# 1. kill -9 under launch, then resume.
"$wristssl" launch --nproc 2 --threads 1 -- "$wristssl" "${common[@]}" --epochs 4 --out "$dir/run" 2>"$dir/launch1.log" &
launcher=$!
pids+=($launcher)
for _ in $(seq 600); do [[ -f "$dir/run/checkpoint.pt" ]] && break; sleep 0.1; done
[[ -f "$dir/run/checkpoint.pt" ]] || fail "no checkpoint after the first epoch"
rank1=$(sed -n 's/^launch: rank 1 pid \([0-9]*\)$/\1/p' "$dir/launch1.log")
[[ -n $rank1 ]] || fail "launch did not name rank 1's pid"
sha_before=$(sha256sum "$dir/run/checkpoint.pt" | cut -d' ' -f1)
start=$(date +%s)
kill -9 "$rank1"
set +e
wait "$launcher"
rc=$?
set -e
took=$(($(date +%s) - start))
echo "launch ended with status $rc, $took s after rank 1 was killed"
[[ $rc -ne 0 ]] || fail "launch succeeded although a rank was killed"
[[ $took -le 25 ]] || fail "launch took $took s to end (timeout 20 s)"
grep -q "rank 1 (pid $rank1) was killed by signal 9" "$dir/launch1.log" || fail "launch did not say rank 1 was killed"
/usr/bin/python3 -c "import torch" 2>/dev/null || true
"$wristssl" launch --nproc 2 --threads 1 -- "$wristssl" "${common[@]}" --epochs 4 --out "$dir/run" 2>"$dir/launch2.log" \
  || fail "the resumed run failed"
grep -q "resuming" "$dir/launch2.log" || fail "the rerun did not resume"
[[ -f "$dir/run/backbone.pt" ]] || fail "the resumed run did not finish"
echo "resumed and finished (checkpoint before the kill: ${sha_before:0:12})"

# 2. Two processes by hand; rank 1 dies; rank 0 must end on its own within the timeout.
port=$(free_port)
env MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$wristssl" --threads 1 "${common[@]}" --epochs 50 \
  --out "$dir/hand" 2>"$dir/hand0.log" &
r0=$!
pids+=($r0)
env MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 "$wristssl" --threads 1 "${common[@]}" --epochs 50 \
  --out "$dir/hand" 2>"$dir/hand1.log" &
r1=$!
pids+=($r1)
for _ in $(seq 600); do grep -q "epoch 1/50" "$dir/hand0.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
start=$(date +%s)
kill -9 "$r1"
set +e
wait "$r0"
rc0=$?
set -e
took=$(($(date +%s) - start))
echo "rank 0 ended with status $rc0, $took s after rank 1 was killed"
[[ $rc0 -ne 0 ]] || fail "rank 0 succeeded although rank 1 was killed"
[[ $took -le 30 ]] || fail "rank 0 took $took s to notice (timeout 20 s)"
grep -q "another rank died, hung or cannot be reached" "$dir/hand0.log" || fail "rank 0's message does not say why"

# 3. Bad set-ups.
expect_error() {  # expect_error LOG PATTERN COMMAND...: the command fails and its output holds PATTERN
  local log=$1 pattern=$2
  shift 2
  if "$@" >"$log" 2>&1; then fail "succeeded: $*"; fi
  grep -q "$pattern" "$log" || fail "no '$pattern' in $log"
}
expect_error "$dir/bad1.log" "RANK=2 is not below WORLD_SIZE=2" \
  env MASTER_ADDR=127.0.0.1 MASTER_PORT=1 WORLD_SIZE=2 RANK=2 "$wristssl" "${common[@]}" --out "$dir/bad"
expect_error "$dir/bad2.log" "MASTER_PORT is not set" \
  env -u MASTER_PORT MASTER_ADDR=127.0.0.1 WORLD_SIZE=2 RANK=0 "$wristssl" "${common[@]}" --out "$dir/bad"
port=$(free_port)
env MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 "$wristssl" --threads 1 "${common[@]}" \
  --temperature 0.2 --out "$dir/bad3" >"$dir/bad3r1.log" 2>&1 &
pids+=($!)
expect_error "$dir/bad3.log" "ranks were started with different --temperature" \
  env MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$wristssl" --threads 1 "${common[@]}" --out "$dir/bad3"
/usr/bin/python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$dir/busy.port" &
pids+=($!)
for _ in $(seq 50); do [[ -s "$dir/busy.port" ]] && break; sleep 0.1; done
expect_error "$dir/bad4.log" "is the port in use" \
  env MASTER_ADDR=127.0.0.1 MASTER_PORT="$(cat "$dir/busy.port")" WORLD_SIZE=2 RANK=0 "$wristssl" "${common[@]}" --out "$dir/bad4"
grep -q "ranks were started with different --temperature" "$dir/bad3r1.log" || fail "rank 1 did not name the option"
# A rank that never comes: the others end within the timeout, saying so.
port=$(free_port)
start=$(date +%s)
expect_error "$dir/bad5.log" "not every rank of 2 joined within 20 s" \
  env MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$wristssl" --threads 1 "${common[@]}" --out "$dir/bad5"
took=$(($(date +%s) - start))
[[ $took -le 30 ]] || fail "waiting for a missing rank took $took s"
echo "failure_check: passed"
