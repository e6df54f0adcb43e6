#!/usr/bin/env bash
# DICOM TLS on both links of `wristssl listen`, with a test CA made here: DCMTK's storescu sends with TLS,
# DCMTK's storescp plays a PACS that accepts TLS only, and the node sits between them. Checks:
# - a sender with a certificate from the CA is served, and the PACS receives the SR and the Secondary Capture
#   over TLS;
# - refused, each with its reason in the node's log and a tls_refused record in the audit trail: a sender that
#   does not speak TLS, one with a certificate from another CA, one with an expired certificate, one with no
#   certificate, and one that does not trust the node's certificate;
# - the forward link verifies the PACS: a PACS whose certificate is from another CA gets nothing, the results
#   wait in outbox/ and the log says why;
# - the audit trail (audit.jsonl) records what came and went, its hash chain holds (recomputed here in Python),
#   and it holds no UID, patient name or patient ID in the clear.
# Usage: tls_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY. Exit 77 when DCMTK's tools or openssl are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../samples/dicom"
wristssl=$1 example=$2
for tool in storescp storescu dcmdump openssl /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
dir=$(mktemp -d)
[[ -z ${KEEP:-} ]] || echo "tls_check: keeping $dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "tls_check: $*"; echo "--- node log"; cat "$dir/node.log" 2>/dev/null; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
"$example" "$dir" >/dev/null

# The PKI: a CA; the node, the PACS and a sender with certificates from it; a rogue CA and its sender; a
# sender whose certificate expired yesterday.
pki="$dir/pki"
"$here/make_test_pki.sh" "$pki"

radiograph=""
for f in "$samples"/*.dcm; do
  [[ -n $(dcmdump +P PixelData "$f" 2>/dev/null) ]] || continue
  uid=$(dcmdump +P SOPInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/')
  if [[ $uid =~ ^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$ ]]; then radiograph=$f; break; fi
done
[[ -n $radiograph ]] || fail "no sample radiograph"

pacs_port=$(free_port)
mkdir -p "$dir/pacs"
storescp +tls "$pki/pacs.key" "$pki/pacs.crt" +cf "$pki/testca.crt" -aet PACS -od "$dir/pacs" -fe .dcm \
  "$pacs_port" >"$dir/pacs.log" 2>&1 &
pids+=($!)
wait_port "$pacs_port" || fail "storescp did not start"

node_port=$(free_port)
"$wristssl" --threads 2 listen --model "$dir/model.wristssl" --port "$node_port" --state "$dir/state" \
  --allow SENDER --forward "127.0.0.1:$pacs_port:PACS" --timeout 10 \
  --tls-key "$pki/node.key" --tls-cert "$pki/node.crt" --tls-ca "$pki/testca.crt" 2>"$dir/node.log" &
node=$!
pids+=($node)
wait_port "$node_port" || fail "listen did not start"
grep -q "DICOM TLS, peer certificates required" "$dir/node.log" || fail "the node does not say it uses TLS"

send() {  # LOG ARGS...: storescu with ARGS; its status
  local log=$1
  shift
  set +e
  storescu -aet SENDER -aec WRISTSSL "$@" 127.0.0.1 "$node_port" "$radiograph" >"$dir/$log" 2>&1
  local rc=$?
  set -e
  return $rc
}
refused() {  # NAME EXPECTED_LOG_TEXT ARGS...: the reason must be in the log lines this attempt added
  local name=$1 want=$2
  shift 2
  local before
  before=$(wc -l <"$dir/node.log")
  if send "$name.log" "$@"; then fail "$name: sent without being refused"; fi
  for _ in $(seq 25); do tail -n +$((before + 1)) "$dir/node.log" | grep -q -- "$want" && return 0; sleep 0.2; done
  cat "$dir/$name.log"
  fail "$name: refused, but the node's log does not say '$want'"
}
refused plain "TLS handshake failed"
refused stranger "certificate was refused: unable to get local issuer certificate (/CN=stranger)" \
  +tls "$pki/stranger.key" "$pki/stranger.crt" +cf "$pki/testca.crt"
refused expired "certificate was refused: certificate has expired (/CN=expired)" \
  +tls "$pki/expired.key" "$pki/expired.crt" +cf "$pki/testca.crt"
refused anonymous "peer did not return a certificate" +tla +cf "$pki/testca.crt"
refused distrustful "it ended the TLS handshake" +tls "$pki/sender.key" "$pki/sender.crt" +cf "$pki/rogueca.crt"
send good.log +tls "$pki/sender.key" "$pki/sender.crt" +cf "$pki/testca.crt" || { cat "$dir/good.log"; fail "a trusted sender was refused"; }
for _ in $(seq 150); do
  [[ $(find "$dir/pacs" -name '*.dcm' | wc -l) -ge 2 ]] && break
  kill -0 "$node" 2>/dev/null || fail "the node died"
  sleep 0.2
done
[[ $(find "$dir/pacs" -name 'SR*.dcm' | wc -l) -eq 1 && $(find "$dir/pacs" -name 'SC*.dcm' | wc -l) -eq 1 ]] ||
  { ls -l "$dir/pacs"; cat "$dir/pacs.log"; fail "the PACS did not receive one SR and one SC over TLS"; }
echo "tls_check: trusted sender served and results forwarded over TLS; 5 kinds of peer refused with reasons"
kill -TERM "$node"
wait "$node" || fail "listen did not exit cleanly"

# The audit trail: the chain recomputed here, the events there, nothing in the clear.
patient_name=$(dcmdump +P PatientName "$radiograph" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)
patient_id=$(dcmdump +P PatientID "$radiograph" 2>/dev/null | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)
sop=$(dcmdump +P SOPInstanceUID "$radiograph" | sed 's/.*\[\(.*\)\].*/\1/')
study=$(dcmdump +P StudyInstanceUID "$radiograph" | sed 's/.*\[\(.*\)\].*/\1/')
/usr/bin/python3 - "$dir/state/audit.jsonl" "$sop" "$study" "$patient_name" "$patient_id" <<'PY' || fail "audit trail"
import hashlib, json, sys
path, sop, study, name, pid = sys.argv[1:6]
text = open(path, encoding="utf-8").read()
lines = text.splitlines()
prev, seq = "", 0
for n, line in enumerate(lines, 1):
    r = json.loads(line)
    assert r["prev"] == prev, f"line {n}: prev {r['prev']} != {prev}"
    assert r["seq"] == seq + 1, f"line {n}: seq {r['seq']} after {seq}"
    prev, seq = hashlib.sha256(line.encode()).hexdigest()[:16], r["seq"]
events = [json.loads(l) for l in lines]
kinds = [e["event"] for e in events]
h = lambda s: hashlib.sha256(s.encode()).hexdigest()[:32]
assert kinds.count("tls_refused") >= 5, kinds
received = [e for e in events if e["event"] == "received"]
assert len(received) == 1 and received[0]["instance"] == h(sop) and received[0]["study"] == h(study), received
assert received[0]["calling_aet"] == "SENDER" and received[0]["peer"] == "127.0.0.1" and received[0]["status"] == "0x0000"
scored = [e for e in events if e["event"] == "scored"]
assert len(scored) == 1 and scored[0]["instance"] == h(sop) and scored[0]["decision"] in ("fracture", "no_fracture", "refer")
sent = [e for e in events if e["event"] == "sent"]
assert sorted(e["object"] for e in sent) == ["secondary capture", "structured report"], sent
assert all(e["outcome"] == "delivered" and e["instance"] == h(sop) and e["destination"].startswith("PACS@") for e in sent)
for secret in (sop, study, name, pid):
    assert not secret or secret not in text, "in the clear: " + secret
print(f"tls_check: audit trail of {len(lines)} records: chain holds, {kinds.count('tls_refused')} TLS refusals, "
      "received/scored/sent recorded, no UID or patient data in the clear")
PY

# The forward link checks the PACS: one whose certificate is from another CA gets nothing.
rogue_port=$(free_port)
mkdir -p "$dir/rogue"
storescp +tls "$pki/roguepacs.key" "$pki/roguepacs.crt" +cf "$pki/testca.crt" -aet PACS -od "$dir/rogue" \
  "$rogue_port" >"$dir/rogue.log" 2>&1 &
pids+=($!)
wait_port "$rogue_port" || fail "the rogue storescp did not start"
node_port=$(free_port)
"$wristssl" --threads 2 listen --model "$dir/model.wristssl" --port "$node_port" --state "$dir/state2" \
  --allow SENDER --forward "127.0.0.1:$rogue_port:PACS" --timeout 10 \
  --tls-key "$pki/node.key" --tls-cert "$pki/node.crt" --tls-ca "$pki/testca.crt" 2>"$dir/node.log" &
node=$!
pids+=($node)
wait_port "$node_port" || fail "the second node did not start"
send good2.log +tls "$pki/sender.key" "$pki/sender.crt" +cf "$pki/testca.crt" || fail "a trusted sender was refused"
for _ in $(seq 100); do grep -q "cannot reach PACS@127.0.0.1:$rogue_port" "$dir/node.log" && break; sleep 0.2; done
grep -q "certificate was refused: unable to get local issuer certificate (/CN=roguepacs)" "$dir/node.log" ||
  fail "the rogue PACS's certificate was not refused with its reason"
grep -q "cannot reach PACS@127.0.0.1:$rogue_port" "$dir/node.log" || fail "no log line for the failed forward"
[[ $(find "$dir/rogue" -type f | wc -l) -eq 0 ]] || fail "the rogue PACS received something"
[[ $(find "$dir/state2/outbox" -name '*.dcm' | wc -l) -eq 2 ]] || fail "the results are not waiting in outbox/"
kill -TERM "$node"
wait "$node" || fail "the second node did not exit cleanly"
echo "tls_check: a PACS with a certificate from another CA got nothing; the results wait in outbox/"
echo "tls_check: passed"
