#!/usr/bin/env bash
# Association set-up time of `wristssl listen` with and without DICOM TLS: DCMTK's echoscu opens an
# association, sends C-ECHO and releases it, N times against a plain node and N times against a TLS node
# (RSA 2048 certificates from tests/dicom/make_test_pki.sh, the BCP 195 non-downgrading profile), alternating.
# Prints one JSON line: per association, the mean and median milliseconds of each, and their ratio.
# Usage: bench/dicom_tls_setup.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY [N (default 50)]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1 example=$2 n=${3:-50}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 250); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
"$example" "$dir" >/dev/null
"$here/../tests/dicom/make_test_pki.sh" "$dir/pki"
pki="$dir/pki"
plain=$(free_port)
"$wristssl" --threads 1 listen --model "$dir/model.wristssl" --port "$plain" --state "$dir/s1" 2>"$dir/plain.log" &
pids+=($!)
tls=$(free_port)
"$wristssl" --threads 1 listen --model "$dir/model.wristssl" --port "$tls" --state "$dir/s2" \
  --tls-key "$pki/node.key" --tls-cert "$pki/node.crt" --tls-ca "$pki/testca.crt" 2>"$dir/tls.log" &
pids+=($!)
wait_port "$plain" && wait_port "$tls"
/usr/bin/python3 - "$n" "$plain" "$tls" "$pki" <<'PY'
import json, statistics, subprocess, sys, time
n, plain, tls, pki = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmds = {"plain": ["echoscu", "-aet", "SENDER", "-aec", "WRISTSSL", "127.0.0.1", plain],
        "tls": ["echoscu", "+tls", f"{pki}/sender.key", f"{pki}/sender.crt", "+cf", f"{pki}/testca.crt",
                "-aet", "SENDER", "-aec", "WRISTSSL", "127.0.0.1", tls]}
ms = {"plain": [], "tls": []}
for _ in range(n):
    for k, c in cmds.items():
        t = time.perf_counter()
        subprocess.run(c, check=True, capture_output=True)
        ms[k].append((time.perf_counter() - t) * 1000)
out = {k: {"mean_ms": round(statistics.mean(v), 2), "median_ms": round(statistics.median(v), 2)} for k, v in ms.items()}
out["n"] = n
out["tls_over_plain_median"] = round(out["tls"]["median_ms"] / out["plain"]["median_ms"], 2)
print(json.dumps(out))
PY
