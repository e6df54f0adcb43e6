#!/usr/bin/env bash
# The DICOM node on loopback, no network beyond 127.0.0.1: DCMTK's storescp plays the PACS, `wristssl listen`
# forwards its results there, DCMTK's storescu sends the bundled DICOM radiographs. Checks:
# - the PACS receives exactly one SR and one Secondary Capture per radiograph, each referencing it (an
#   instance sent twice and one left in incoming/ by a "crash" before start give no duplicates; one that the
#   node was scoring when it stopped three times is set aside in failed/, not scored);
# - a data set without pixel data is answered 0xC000, a CT is refused at negotiation, a full queue answers
#   0xA700, and the node keeps running through all of it;
# - no patient name or ID reaches the node's log; SIGTERM stops it with status 0;
# - a caller not in --allow is refused, and a forward peer's rejection is logged with the peer's reason.
# Usage: loopback_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY. Exit 77 when DCMTK's tools are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../samples/dicom"
wristssl=$1 example=$2
for tool in storescp storescu dcmodify dcmdump /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
dir=$(mktemp -d)
[[ -z ${KEEP:-} ]] || echo "loopback_check: keeping $dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "loopback_check: $*"; echo "--- node log"; cat "$dir/node.log" 2>/dev/null; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
"$example" "$dir" >/dev/null

# The radiographs: every bundled DICOM with pixel data and a valid SOP Instance UID. One sample's UID has a
# leading zero in a component: no result can reference it, so the node refuses it with 0xC000.
radiographs=()
malformed=()
for f in "$samples"/*.dcm; do
  [[ -n $(dcmdump +P PixelData "$f" 2>/dev/null) ]] || continue
  uid=$(dcmdump +P SOPInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/')
  if [[ $uid =~ ^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$ ]]; then radiographs+=("$f"); else malformed+=("$f"); fi
done
expected=${#radiographs[@]}
[[ $expected -ge 3 ]] || fail "only $expected sample radiographs"
# Bad inputs: one without pixel data (its own SOP Instance UID), one that says it is a CT.
cp "${radiographs[0]}" "$dir/nopixels.dcm"
dcmodify -nb -ea PixelData -m SOPInstanceUID=1.2.826.0.1.3680043.10.999.1 "$dir/nopixels.dcm"
cp "${radiographs[0]}" "$dir/ct.dcm"
dcmodify -nb -m SOPClassUID=1.2.840.10008.5.1.4.1.1.2 -m Modality=CT \
  -m SOPInstanceUID=1.2.826.0.1.3680043.10.999.2 "$dir/ct.dcm"

pacs_port=$(free_port)
mkdir -p "$dir/pacs"
storescp -aet PACS -od "$dir/pacs" -fe .dcm "$pacs_port" >"$dir/pacs.log" 2>&1 &
pids+=($!)
wait_port "$pacs_port" || fail "storescp did not start"

# A radiograph received before a crash, not yet scored: the node must pick it up at start.
mkdir -p "$dir/state/incoming"
cp "${radiographs[1]}" "$dir/state/incoming/0000leftover.dcm"
echo "half a file" >"$dir/state/incoming/receiving-7.part"
# One that the node was scoring when it stopped three times (a decoder crash, say): set aside, never scored.
cp "${radiographs[2]}" "$dir/state/incoming/0001poison.dcm"
echo 3 >"$dir/state/incoming/0001poison.dcm.attempts"

node_port=$(free_port)
"$wristssl" --threads 2 listen --model "$dir/model.wristssl" --port "$node_port" --state "$dir/state" \
  --forward "127.0.0.1:$pacs_port:PACS" --timeout 10 2>"$dir/node.log" &
node=$!
pids+=($node)
wait_port "$node_port" || fail "listen did not start"

set +e
# storescu proposes uncompressed transfer syntaxes unless told otherwise: each compressed file is sent with
# the option that proposes its own syntax (the node prefers it, so nothing is transcoded).
propose() {
  case $(dcmdump -M -Un +P 0002,0010 "$1" | sed 's/.*\[\(.*\)\].*/\1/') in
    1.2.840.10008.1.2.4.90) echo -xv ;; 1.2.840.10008.1.2.4.91) echo -xw ;;
    1.2.840.10008.1.2.4.57 | 1.2.840.10008.1.2.4.70) echo -xs ;; 1.2.840.10008.1.2.4.80) echo -xt ;;
    1.2.840.10008.1.2.4.81) echo -xu ;; 1.2.840.10008.1.2.5) echo -xr ;; 1.2.840.10008.1.2.4.50) echo -xy ;;
    1.2.840.10008.1.2.4.51) echo -xx ;; *) echo -xe ;;
  esac
}
for f in "${radiographs[@]}" "${malformed[@]}" "$dir/nopixels.dcm"; do
  storescu $(propose "$f") -aet SENDER -aec WRISTSSL 127.0.0.1 "$node_port" "$f" >>"$dir/send1.log" 2>&1
done
storescu -R -aet SENDER -aec WRISTSSL 127.0.0.1 "$node_port" "$dir/ct.dcm" >"$dir/send2.log" 2>&1  # CT only
ct_rc=$?
storescu $(propose "${radiographs[0]}") -aet SENDER -aec WRISTSSL 127.0.0.1 "$node_port" "${radiographs[0]}" \
  >"$dir/send3.log" 2>&1  # the same instance again
set -e
[[ $ct_rc -ne 0 ]] || fail "a CT was accepted"

# Wait for 2 objects per radiograph at the PACS, then a little longer for any duplicate.
for _ in $(seq 300); do
  [[ $(find "$dir/pacs" -name '*.dcm' | wc -l) -ge $((2 * expected)) ]] && break
  kill -0 "$node" 2>/dev/null || fail "the node died"
  sleep 0.5
done
sleep 3
sr=$(find "$dir/pacs" -name 'SR*.dcm' | wc -l)
sc=$(find "$dir/pacs" -name 'SC*.dcm' | wc -l)
total=$(find "$dir/pacs" -name '*.dcm' | wc -l)
echo "PACS received $sr SR and $sc secondary captures ($total files) for $expected radiographs"
[[ $sr -eq $expected && $sc -eq $expected && $total -eq $((2 * expected)) ]] || { ls "$dir/pacs"; fail "wrong objects at the PACS"; }
# Each SR and SC references one of the radiographs, and together they cover all of them.
for f in "${radiographs[@]}"; do dcmdump +P SOPInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/'; done | sort >"$dir/want.txt"
for f in "$dir"/pacs/SR*.dcm; do dcmdump +P ReferencedSOPInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/' | sort -u; done | sort >"$dir/sr.txt"
for f in "$dir"/pacs/SC*.dcm; do dcmdump +P ReferencedSOPInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/' | sort -u; done | sort >"$dir/sc.txt"
diff "$dir/want.txt" "$dir/sr.txt" >/dev/null || fail "SR references differ: $(cat "$dir/sr.txt")"
diff "$dir/want.txt" "$dir/sc.txt" >/dev/null || fail "SC references differ: $(cat "$dir/sc.txt")"
grep -q "refused with 0xC000: no pixel data" "$dir/node.log" || fail "no 0xC000 for the data set without pixels"
grep -q "proposes only CTImageStorage: not radiograph storage, refused" "$dir/node.log" || fail "no log line for the CT"
if [[ ${#malformed[@]} -gt 0 ]]; then
  grep -q "refused with 0xC000: .*is not a valid UID" "$dir/node.log" || fail "no 0xC000 for a malformed UID"
fi
grep -q "0000leftover\|received before a restart" "$dir/node.log" || fail "the leftover was not picked up"
[[ ! -e "$dir/state/incoming/receiving-7.part" ]] || fail "a half-received file was kept"
grep -q "instance file 0001poison.dcm moved to failed/: the node stopped 3 times while scoring it" "$dir/node.log" ||
  fail "an instance that stopped the node three times was not set aside"
[[ -e "$dir/state/failed/0001poison.dcm" && -e "$dir/state/failed/0001poison.dcm.txt" ]] || fail "not in failed/ with its reason"
[[ -z $(find "$dir/state/incoming" -name '*.attempts') ]] || fail "attempt counts left in incoming/"
# No patient data in the log.
for f in "${radiographs[@]}"; do
  for tag in PatientName PatientID; do
    v=$(dcmdump +P "$tag" "$f" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)
    if [[ -n $v ]] && grep -qF "$v" "$dir/node.log"; then fail "$tag of $f is in the log"; fi
  done
done

# A full queue: a second node with room for one instance refuses the second of an association.
kill -TERM "$node"
wait "$node" || fail "listen did not exit cleanly on SIGTERM"
port2=$(free_port)
echo '{"allow": ["SENDER@127.0.0.1"]}' >"$dir/peers.json"  # the allowlist as a peers file
"$wristssl" --threads 2 listen --model "$dir/model.wristssl" --port "$port2" --state "$dir/state2" --queue 1 \
  --peers "$dir/peers.json" 2>"$dir/node2.log" &
node2=$!
pids+=($node2)
wait_port "$port2" || fail "the second node did not start"
set +e
# Who may send: a calling AE title not in --allow is refused at association, and the log says who and why.
storescu -aet STRANGER -aec WRISTSSL 127.0.0.1 "$port2" "${radiographs[0]}" >"$dir/send-stranger.log" 2>&1
stranger=$?
[[ $stranger != 0 ]] || fail "an AE title not in --allow could send"
grep -qi "calling AE title not recogni" "$dir/send-stranger.log" || { cat "$dir/send-stranger.log"; fail "storescu was not told why"; }
grep -q "refused an association from AE title 'STRANGER' at 127.0.0.1" "$dir/node2.log" || fail "the refusal is not in the log"
[[ -z $(ls "$dir/state2/incoming" 2>/dev/null) ]] || fail "a refused sender's instance was kept"
storescu -v -aet SENDER -aec WRISTSSL -nh 127.0.0.1 "$port2" "${radiographs[0]}" "${radiographs[2]}" >"$dir/send4.log" 2>&1
set -e
grep -qi "0xa700\|OutOfResources\|Out of Resources" "$dir/send4.log" || { cat "$dir/send4.log"; fail "no 0xA700 when the queue was full"; }
# The forward peer's answer: a node forwarding to node2 (which allows only SENDER) is rejected, and its log
# says why, as the peer said it.
port3=$(free_port)
"$wristssl" --threads 2 listen --model "$dir/model.wristssl" --port "$port3" --state "$dir/state3" \
  --forward "127.0.0.1:$port2:WRISTSSL" 2>"$dir/node3.log" &
node3=$!
pids+=($node3)
wait_port "$port3" || fail "the third node did not start"
storescu $(propose "${radiographs[1]}") -aet SENDER -aec WRISTSSL 127.0.0.1 "$port3" "${radiographs[1]}" >"$dir/send5.log" 2>&1 || fail "node3 refused"
for _ in $(seq 100); do grep -q "cannot reach" "$dir/node3.log" && break; sleep 0.1; done
grep -q "cannot reach WRISTSSL@127.0.0.1:$port2 (Association Rejected: .*Calling AE Title Not Recognized); 2 results wait in outbox/" \
  "$dir/node3.log" || { cat "$dir/node3.log"; fail "the forward peer's rejection is not logged with its reason"; }
grep -q '"event":"send_failed".*Calling AE Title Not Recognized' "$dir/state3/audit.jsonl" || fail "no send_failed audit record"
kill -TERM "$node3"
wait "$node3" || fail "the third node did not exit cleanly"
kill -0 "$node2" || fail "the second node died"
kill -TERM "$node2"
wait "$node2" || fail "the second node did not exit cleanly"
echo "loopback_check: passed"
