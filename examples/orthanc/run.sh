#!/usr/bin/env bash
# Orthanc (Debian's `orthanc`) in front of `wristssl listen`, all on loopback: a radiograph pushed into Orthanc
# with storescu is routed to wristssl by route.lua, and wristssl's structured report and secondary capture come
# back into the same study in Orthanc, which the script then lists through Orthanc's REST API.
# Usage: examples/orthanc/run.sh WRISTSSL_BINARY MODEL_BUNDLE [DICOM_FILES...] (default: the bundled samples).
# Exit 77 when Orthanc, DCMTK's storescu or curl is missing. Ports are chosen free at start.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1 model=$2
shift 2
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=("$here/../../samples/dicom/CR-MONO1-10-chest.dcm" "$here/../../samples/dicom/RG3_J2KI.dcm")
for tool in Orthanc storescu curl /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
orthanc_dicom=$(free_port) orthanc_http=$(free_port) node=$(free_port)
cat >"$dir/orthanc.json" <<JSON
{
  "Name": "wristssl-example",
  "StorageDirectory": "$dir/storage",
  "IndexDirectory": "$dir/storage",
  "DicomAet": "ORTHANC",
  "DicomPort": $orthanc_dicom,
  "HttpPort": $orthanc_http,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomModalities": { "wristssl": [ "WRISTSSL", "127.0.0.1", $node ] },
  "LuaScripts": [ "$here/route.lua" ],
  "Plugins": [ ]
}
JSON
Orthanc "$dir/orthanc.json" >"$dir/orthanc.log" 2>&1 &
pids+=($!)
"$wristssl" listen --model "$model" --port "$node" --state "$dir/node" \
  --forward "127.0.0.1:$orthanc_dicom:ORTHANC" 2>"$dir/node.log" &
pids+=($!)
wait_port "$orthanc_dicom" && wait_port "$orthanc_http" && wait_port "$node" || { cat "$dir"/*.log; exit 1; }
echo "Orthanc: DICOM port $orthanc_dicom, http://127.0.0.1:$orthanc_http ; wristssl listen: port $node"
for f in "${files[@]}"; do
  xs=-xe
  [[ $(dcmdump -M -Un +P 0002,0010 "$f" 2>/dev/null) == *1.2.840.10008.1.2.4.91* ]] && xs=-xw
  storescu $xs -aet MODALITY -aec ORTHANC 127.0.0.1 "$orthanc_dicom" "$f"
done
want=$((3 * ${#files[@]}))  # each radiograph, its report and its secondary capture
for _ in $(seq 240); do
  n=$(curl -s "http://127.0.0.1:$orthanc_http/instances" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [[ $n -ge $want ]] && break
  sleep 0.5
done
curl -s "http://127.0.0.1:$orthanc_http/series?expand" >"$dir/series.json"
/usr/bin/python3 - "$dir/series.json" <<'PY'
import json, sys
series = json.load(open(sys.argv[1]))
for s in sorted(series, key=lambda s: (s['ParentStudy'], s['MainDicomTags'].get('SeriesNumber', ''))):
    t = s['MainDicomTags']
    print('study %s  series %5s  %-3s %-32s %d instance(s)' % (s['ParentStudy'][:8], t.get('SeriesNumber', ''),
          t.get('Modality', ''), t.get('SeriesDescription', ''), len(s['Instances'])))
PY
echo "--- wristssl listen"
cat "$dir/node.log"
[[ $n -ge $want ]] || { echo "Orthanc holds $n instances, expected $want"; cat "$dir/orthanc.log" | tail -20; exit 1; }
echo "orthanc example: passed ($n instances in Orthanc)"
