#!/usr/bin/env bash
# A full disk under `wristssl listen` and `predict --dicom-out`, on a small tmpfs (mounted here: needs root;
# exit 77 when mounting is not allowed). Checks:
# - with less than --min-free left, a new instance is refused with 0xA700 (Out of Resources) before anything
#   is written, the log names the folder and the free space, and the same instance is accepted and its results
#   delivered once space returns;
# - with the disk completely full while an instance waits to be scored, writing its results fails, the log
#   names the file, the instance stays in incoming/ (not failed/), and once space returns it is scored and its
#   results delivered, once;
# - an instance received into a completely full disk fails mid-transfer and leaves no half-file;
# - predict --dicom-out into a full disk warns per file, naming it, and leaves no partial or temporary file.
# Usage: diskfull_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../samples/dicom"
wristssl=$1 example=$2
for tool in storescp storescu dcmodify dcmdump mount umount /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
dir=$(mktemp -d)
[[ -z ${KEEP:-} ]] || echo "diskfull_check: keeping $dir"
mkdir -p "$dir/disk"
if ! mount -t tmpfs -o size=12m tmpfs "$dir/disk" 2>/dev/null; then
  rm -rf "$dir"
  echo "skip: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
  exit 77
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  umount "$dir/disk" 2>/dev/null || umount -l "$dir/disk" 2>/dev/null || true
  [[ -n ${KEEP:-} ]] || rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "diskfull_check: $*"; echo "--- node log"; cat "$dir/node.log" 2>/dev/null; df -m "$dir/disk"; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 250); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
free_mb() { df -m --output=avail "$dir/disk" | tail -1 | tr -d ' '; }
fill_to() {  # leave about $1 MB free
  rm -f "$dir/disk/filler"
  local n=$(($(free_mb) - $1))
  if [[ $n -gt 0 ]]; then dd if=/dev/zero of="$dir/disk/filler" bs=1M count="$n" status=none; fi
}
fill_all() { rm -f "$dir/disk/filler"; dd if=/dev/zero of="$dir/disk/filler" bs=64k status=none 2>/dev/null || true; }
"$example" "$dir" >/dev/null
base="$samples/CR-MONO1-10-chest.dcm"
for i in 1 2 3; do
  cp "$base" "$dir/r$i.dcm"
  dcmodify -nb -m "SOPInstanceUID=1.2.826.0.1.3680043.10.1003.$i" "$dir/r$i.dcm"
done

pacs_port=$(free_port)
mkdir -p "$dir/pacs"
storescp -aet PACS -od "$dir/pacs" +uf -fe .dcm "$pacs_port" >"$dir/pacs.log" 2>&1 &
pids+=($!)
wait_port "$pacs_port" || fail "storescp did not start"
node_port=$(free_port)
state="$dir/disk/state"
start_node() {  # MIN_FREE
  "$wristssl" --threads 1 listen --model "$dir/model.wristssl" --port "$node_port" --state "$state" \
    --forward "127.0.0.1:$pacs_port:PACS" --timeout 10 --min-free "$1" 2>>"$dir/node.log" &
  node=$!
  pids+=($node)
  wait_port "$node_port" || fail "listen did not start"
}
stop_node() { kill -TERM "$node"; wait "$node" || fail "listen did not exit cleanly"; }
send() { storescu -v -aet SENDER -aec WRISTSSL 127.0.0.1 "$node_port" "$1" >"$dir/send.log" 2>&1 || true; }
at_pacs() { find "$dir/pacs" -name '*.dcm' | wc -l; }
wait_pacs() {  # N
  for _ in $(seq 200); do [[ $(at_pacs) -ge $1 ]] && return 0; sleep 0.1; done
  fail "the PACS has $(at_pacs) objects, expected $1"
}

# 1. Below --min-free: refused with 0xA700, nothing written; accepted once space returns.
start_node 4
fill_to 2
send "$dir/r1.dcm"
grep -qi "OutOfResources\|Out of Resources\|0xa700" "$dir/send.log" || { cat "$dir/send.log"; fail "no 0xA700 below --min-free"; }
grep -q "disk nearly full: [0-9]* MB free in $state/incoming (--min-free 4): instance .* refused with 0xA700" \
  "$dir/node.log" || fail "the refusal does not name the folder and the free space"
[[ -z $(find "$state/incoming" -type f) ]] || fail "something was written below --min-free"
rm -f "$dir/disk/filler"
send "$dir/r1.dcm"
grep -q "Received Store Response (Success)" "$dir/send.log" || { cat "$dir/send.log"; fail "not accepted once space returned"; }
wait_pacs 2
echo "diskfull_check: below --min-free an instance gets 0xA700 and nothing is written; accepted once space returns"

# 2. The disk full while an instance waits to be scored: kept, retried, delivered once.
stop_node
cp "$dir/r2.dcm" "$state/incoming/0000waiting.dcm"
fill_all
start_node 0
for _ in $(seq 100); do grep -q "cannot write the results of instance" "$dir/node.log" && break; sleep 0.1; done
grep -q "cannot write the results of instance .*$state/results/.*No space left on device.*stays in incoming/" \
  "$dir/node.log" || fail "no clear error naming the results file"
[[ -e "$state/incoming/0000waiting.dcm" ]] || fail "the instance left incoming/ while the disk was full"
[[ -z $(find "$state/failed" -type f) ]] || fail "the instance went to failed/"
[[ -z $(find "$state" -name '*.tmp*' -o -name '.*tmp*' | grep -v filler) ]] || fail "temporary files left: $(find "$state" -name '*tmp*')"

# 3. Meanwhile, an instance sent into the full disk fails mid-transfer and leaves nothing.
send "$dir/r3.dcm"
grep -q "Received Store Response (Success)" "$dir/send.log" && fail "an instance was acknowledged into a full disk"
grep -q "a transfer failed mid-way (.*no space left in $state/incoming)" "$dir/node.log" ||
  fail "the failed transfer does not say the disk is full"
[[ -z $(find "$state/incoming" -name '*.part') ]] || fail "a half-received file was left"

rm -f "$dir/disk/filler"
wait_pacs 4
[[ ! -e "$state/incoming/0000waiting.dcm" ]] || fail "the waiting instance was not scored once space returned"
send "$dir/r3.dcm"
wait_pacs 6
sleep 1
stop_node
n=$(at_pacs)
[[ $n -eq 6 ]] || fail "the PACS holds $n objects for 3 instances"
echo "diskfull_check: a full disk kept the waiting instance in incoming/ and retried it; 3 instances, 6 objects at the PACS"

# 4. predict --dicom-out into a full disk: a warning naming each file, nothing partial left.
mkdir -p "$dir/disk/out"
fill_all
"$wristssl" --threads 1 predict --model "$dir/model.wristssl" --dicom-out "$dir/disk/out" "$dir/r1.dcm" \
  >"$dir/predict.csv" 2>"$dir/predict.log" || true
grep -q "no DICOM results: .*$dir/disk/out/.*No space left on device" "$dir/predict.log" ||
  { cat "$dir/predict.log"; fail "predict did not name the file it could not write"; }
[[ -z $(find "$dir/disk/out" -type f) ]] || fail "predict left files in a full disk: $(ls -a "$dir/disk/out")"
echo "diskfull_check: predict --dicom-out into a full disk warned and left no partial file"

# 5. A training run whose folder is on a full disk stops with an error naming the file, leaves no file that a
# rerun would trust, and the same command finishes once space returns (Fashion-MNIST, Debian's package).
data=/usr/share/datasets/fashion-mnist
if [[ -d $data ]]; then
  mkdir -p "$dir/big"
  mount -t tmpfs -o size=400m tmpfs "$dir/big" || fail "cannot mount the second tmpfs"
  cleanup_big() { umount "$dir/big" 2>/dev/null || umount -l "$dir/big" 2>/dev/null || true; }
  trap 'cleanup_big; cleanup' EXIT
  args=(--data "$data" --limit 64 --image-size 28 --init random --probe-epochs 0 --finetune-epochs 3
        --batch-size 16 --workers 1 --seed 3 --cache-dir "$dir/cache" --out "$dir/big/run")
  dd if=/dev/zero of="$dir/big/filler" bs=1M count=396 status=none 2>/dev/null || true
  if "$wristssl" --threads 1 train "${args[@]}" >"$dir/train1.log" 2>&1; then
    fail "training into a full disk reported success"
  fi
  grep -q "$dir/big/run/.*No space left on device" "$dir/train1.log" ||
    { tail -5 "$dir/train1.log"; fail "the training error does not name the file and the reason"; }
  for f in model.pt checkpoint.pt model.wristssl threshold.json; do
    [[ ! -e $dir/big/run/$f ]] || fail "a $f was left in the full disk's run folder"
  done
  [[ -z $(find "$dir/big/run" -name '*tmp*' 2>/dev/null) ]] || fail "temporary files left: $(find "$dir/big/run" -name '*tmp*')"
  rm -f "$dir/big/filler"
  "$wristssl" --threads 1 train "${args[@]}" >"$dir/train2.log" 2>&1 || { tail -5 "$dir/train2.log"; fail "the rerun failed"; }
  [[ -s $dir/big/run/model.pt ]] || fail "the rerun left no model.pt"
  echo "diskfull_check: training into a full disk stopped with the file named, left nothing to trust; the rerun finished"
  cleanup_big
else
  echo "diskfull_check: (training part skipped: dataset-fashion-mnist not installed)"
fi
echo "diskfull_check: passed"
