#!/usr/bin/env bash
# Nothing lost, nothing twice: `wristssl listen` killed -9 at random moments while a sender sends INSTANCES
# radiographs (each with its own SOP Instance UID) and DCMTK's storescp plays the PACS. The sender retries an
# instance until the node answers Success, as a modality does; the node is restarted on the same state folder
# after each kill. Before that, two faults are placed on purpose:
# - a sender whose connection is cut half-way through an instance (a TCP proxy drops it): no half-file is
#   kept or scored, and nothing reaches the PACS for it;
# - the node killed while an instance is being received (throttled through the proxy): the half-file is
#   dropped at restart, the sender's retry is scored once.
# At the end the PACS must hold, for every instance sent, exactly one structured report and one Secondary
# Capture (by SOP Instance UID, each referencing its source), nothing else, and the node's state folder
# nothing left over. A result object the PACS received twice with the same SOP Instance UID (sent, then the
# node killed before it could note it) replaces itself in a PACS; the script counts such redeliveries and
# reports them. The audit trail's hash chain must hold across the kills.
# Usage: fault_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY; INSTANCES (default 200) and KILLS (default 20) in
# the environment. Exit 77 when DCMTK's tools are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../samples/dicom"
wristssl=$1 example=$2
instances=${INSTANCES:-200} kills=${KILLS:-20}
for tool in storescp storescu dcmodify dcmdump /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
dir=$(mktemp -d)
[[ -z ${KEEP:-} ]] || echo "fault_check: keeping $dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "fault_check: $*"; echo "--- node log (tail)"; tail -30 "$dir/node.log" 2>/dev/null; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 250); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
start=$(date +%s.%N)
"$example" "$dir" >/dev/null

# The instances: copies of one sample radiograph, each with its own SOP Instance UID.
mkdir -p "$dir/send"
base="$samples/CR-MONO1-10-chest.dcm"
for i in $(seq -w 1 "$instances"); do
  cp "$base" "$dir/send/$i.dcm"
  dcmodify -nb -m "SOPInstanceUID=1.2.826.0.1.3680043.10.1001.$((10#$i))" "$dir/send/$i.dcm"
done
big="$dir/big.dcm"  # one more, for the cut and the slow transfer
cp "$base" "$big"
dcmodify -nb -m "SOPInstanceUID=1.2.826.0.1.3680043.10.1002.1" "$big"

pacs_port=$(free_port)
mkdir -p "$dir/pacs"
storescp -aet PACS -od "$dir/pacs" +uf -fe .dcm "$pacs_port" >"$dir/pacs.log" 2>&1 &  # every store its own file
pids+=($!)
wait_port "$pacs_port" || fail "storescp did not start"
node_port=$(free_port)
node=0
start_node() {
  "$wristssl" --threads 1 listen --model "$dir/model.wristssl" --port "$node_port" --state "$dir/state" \
    --forward "127.0.0.1:$pacs_port:PACS" --timeout 10 2>>"$dir/node.log" &
  node=$!
  pids+=($node)
  wait_port "$node_port" || fail "listen did not start"
}
# What the state folder holds at a kill: half-received files, instances not yet scored, results not yet sent.
snapshot() {
  local part inc out
  part=$(find "$dir/state/incoming" -name '*.part' 2>/dev/null | wc -l)
  inc=$(find "$dir/state/incoming" -name '*.dcm' 2>/dev/null | wc -l)
  out=$(find "$dir/state/outbox" -name '*.dcm' 2>/dev/null | wc -l)
  echo "$part $inc $out" >>"$dir/kills.txt"
}
kill_node() {
  snapshot
  kill -9 "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  echo "listen: --- killed -9 ---" >>"$dir/node.log"
}
send_one() {  # FILE [PORT]: until the node answers Success
  local f=$1 port=${2:-$node_port}
  for _ in $(seq 200); do
    if storescu -v -aet SENDER -aec WRISTSSL 127.0.0.1 "$port" "$f" >"$dir/last-send.log" 2>&1 &&
      grep -q "Received Store Response (Success)" "$dir/last-send.log"; then
      return 0
    fi
    sleep 0.2
  done
  cat "$dir/last-send.log"
  return 1
}
start_node

# 1. A sender cut off half-way through an instance.
"$here/tcp_proxy.py" "$dir/cut.port" "$node_port" --cut-after 200000 &
pids+=($!)
for _ in $(seq 50); do [[ -s $dir/cut.port ]] && break; sleep 0.1; done
set +e
storescu -aet SENDER -aec WRISTSSL 127.0.0.1 "$(cat "$dir/cut.port")" "$big" >"$dir/cut.log" 2>&1
cut_rc=$?
set -e
[[ $cut_rc -ne 0 ]] || fail "the cut transfer reported success"
for _ in $(seq 50); do grep -q "a transfer failed mid-way" "$dir/node.log" && break; sleep 0.1; done
grep -q "a transfer failed mid-way" "$dir/node.log" || fail "the node did not notice the cut transfer"
[[ -z $(ls "$dir/state/incoming") ]] || fail "a half-received file was kept: $(ls "$dir/state/incoming")"

# 2. The node killed while it receives (the transfer throttled to about 6 s for 388 kB), then the sender's retry.
"$here/tcp_proxy.py" "$dir/slow.port" "$node_port" --rate 60000 &
pids+=($!)
for _ in $(seq 50); do [[ -s $dir/slow.port ]] && break; sleep 0.1; done
storescu -aet SENDER -aec WRISTSSL 127.0.0.1 "$(cat "$dir/slow.port")" "$big" >"$dir/slow.log" 2>&1 &
slow_sender=$!
for _ in $(seq 100); do [[ -n $(find "$dir/state/incoming" -name '*.part') ]] && break; sleep 0.05; done
[[ -n $(find "$dir/state/incoming" -name '*.part') ]] || fail "no half-received file to kill the node on"
kill_node
wait "$slow_sender" 2>/dev/null && fail "the sender was told Success by a node killed mid-transfer"
start_node
[[ -z $(find "$dir/state/incoming" -name '*.part') ]] || fail "the half-received file survived the restart"
send_one "$big" || fail "the retry of the big instance failed"
echo "fault_check: a cut transfer left nothing; a node killed mid-transfer dropped the half-file at restart"

# 3. Kills spread over the sending: the k-th when about k/(KILLS+1) of the instances have been acknowledged,
# after a further random 0-0.6 s (so that it lands while receiving, scoring or forwarding).
(
  n=0
  for f in "$dir"/send/*.dcm; do
    send_one "$f" || exit 1
    n=$((n + 1))
    echo "$n" >"$dir/progress.tmp" && mv "$dir/progress.tmp" "$dir/progress"
  done
) &
sender=$!
RANDOM=${SEED:-7}
for k in $(seq "$kills"); do
  until [[ $(cat "$dir/progress" 2>/dev/null || echo 0) -ge $((k * instances / (kills + 1))) ]]; do
    kill -0 "$sender" 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
  kill_node
  start_node
done
wait "$sender" || fail "the sender gave up"
expected=$((instances + 1))
for _ in $(seq 600); do
  n=$(find "$dir/pacs" -name '*.dcm' | wc -l)
  [[ $n -ge $((2 * expected)) && -z $(find "$dir/state/incoming" "$dir/state/outbox" -type f) ]] && break
  kill -0 "$node" 2>/dev/null || fail "the node died"
  sleep 0.2
done
sleep 2
kill -TERM "$node"
wait "$node" || fail "listen did not exit cleanly"
wall=$(/usr/bin/python3 -c "import time; print(round(time.time() - $start, 1))")

# The count, in Python: every source has exactly one SR UID and one SC UID; nothing else arrived.
made=$(grep -c . "$dir/kills.txt")
/usr/bin/python3 - "$dir" "$wall" <<'PY' || fail "count"
import collections, glob, hashlib, json, os, sys
import pydicom
top, wall = sys.argv[1], float(sys.argv[2])
state = os.path.join(top, "state")
want = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
        for f in glob.glob(os.path.join(top, "send", "*.dcm")) + [os.path.join(top, "big.dcm")]}
rows = []
for f in glob.glob(os.path.join(top, "pacs", "*.dcm")):
    d = pydicom.dcmread(f, stop_before_pixels=True)
    refs = {r.ReferencedSOPInstanceUID for r in d.get("SourceImageSequence", [])} or \
           {r.ReferencedSOPInstanceUID for s in d.get("CurrentRequestedProcedureEvidenceSequence", [])
            for se in s.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}
    assert len(refs) == 1, f"{f}: references {refs}"
    rows.append((d.SOPClassUID, d.SOPInstanceUID, refs.pop()))
kills = [tuple(map(int, l.split())) for l in open(os.path.join(top, "kills.txt")) if l.strip()]
SR, SC = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"
objects = collections.defaultdict(set)  # (kind, source) -> result UIDs
stores = collections.Counter()
for cls, uid, ref in rows:
    kind = {SR: "SR", SC: "SC"}.get(cls, cls)
    objects[(kind, ref)].add(uid)
    stores[uid] += 1
sources = {ref for (_, ref) in objects}
lost = {s for s in want for k in ("SR", "SC") if not objects.get((k, s))}
doubled = {k: v for k, v in objects.items() if len(v) > 1}
strangers = sources - want
redelivered = sum(c - 1 for c in stores.values())
leftover = [os.path.join(r, f) for r, _, fs in os.walk(state) for f in fs
            if not r.endswith("results") and not f.startswith("audit") and not r.endswith("failed")]
failed = os.listdir(os.path.join(state, "failed"))
# The audit trail's chain across the kills.
prev, seq, records = "", 0, 0
for line in open(os.path.join(state, "audit.jsonl"), encoding="utf-8").read().splitlines():
    r = json.loads(line)
    assert r["prev"] == prev and r["seq"] == seq + 1, f"audit chain broken at seq {r['seq']}"
    prev, seq, records = hashlib.sha256(line.encode()).hexdigest()[:16], r["seq"], records + 1
summary = {"instances": len(want), "kills": len(kills),
           "kills_with_half_received_file": sum(1 for p, i, o in kills if p),
           "kills_with_instances_unscored": sum(1 for p, i, o in kills if i),
           "kills_with_results_unsent": sum(1 for p, i, o in kills if o),
           "pacs_stores": len(rows), "distinct_objects": len(stores), "lost": len(lost),
           "duplicated": len(doubled), "unexpected": len(strangers), "redelivered_same_uid": redelivered,
           "left_in_state": len(leftover), "failed": len(failed), "audit_records": records, "wall_s": wall}
print("fault_check: " + json.dumps(summary))
assert not lost, f"lost: {sorted(lost)[:5]}"
assert not doubled, f"two result objects for one source: {list(doubled.items())[:3]}"
assert not strangers, f"results for instances never sent: {strangers}"
assert len(stores) == 2 * len(want), f"{len(stores)} distinct objects for {len(want)} instances"
assert not leftover and not failed, f"left in the state folder: {leftover[:5]} failed: {failed[:5]}"
PY
echo "fault_check: passed ($made kills)"
