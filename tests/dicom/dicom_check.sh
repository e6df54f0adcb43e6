#!/usr/bin/env bash
# DICOM results checked by tools that are not ours: `wristssl predict --dicom-out` on the bundled DICOM
# radiographs (and ../shared/data/dicom when present), then for every object dciodvfy (dicom3tools) must report
# no error; for every SR, pixelmed's DicomSRValidator must find root template TID 1500 and report no error, and
# dsrdump (DCMTK) must print the tree; check_results.py (pydicom) checks the context copy, the references and
# that the SR's probability equals predict's, and that each box predict shows is an image region of the SR
# (a second run with a threshold low enough that every image shows its boxes).
# Usage: dicom_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY [KEEP_DIR]. Exit 77 when a tool is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1 example=$2
for tool in dciodvfy dsrdump java /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
[[ -f /usr/share/java/pixelmed.jar ]] || { echo "skip: pixelmed-apps not installed"; exit 77; }
dir=${3:-$(mktemp -d)}
mkdir -p "$dir"
[[ -n ${3:-} ]] || trap 'rm -rf "$dir"' EXIT
"$example" "$dir" >/dev/null
inputs=("$here/../../samples/dicom")
[[ -d "$here/../../../shared/data/dicom" ]] && inputs+=("$here/../../../shared/data/dicom")
"$wristssl" --threads 2 predict --model "$dir/model.wristssl" "${inputs[@]}" --csv "$dir/predict.csv" \
  --dicom-out "$dir/out" 2>"$dir/predict.log"
# The same weights with a threshold low enough that every image is called fracture: each SR then carries
# its boxes as image regions (TID 1410), which the validators must accept too.
"$wristssl" --threads 2 predict --model "$dir/model-flagging.wristssl" "${inputs[@]}" \
  --csv "$dir/predict-flagging.csv" --dicom-out "$dir/out-flagging" 2>"$dir/predict-flagging.log"
failed=0
n=0
for f in "$dir"/out/*.dcm "$dir"/out-flagging/*.dcm; do
  n=$((n + 1))
  dciodvfy "$f" >"$dir/dciodvfy.txt" 2>&1 || true
  if grep -q '^Error' "$dir/dciodvfy.txt"; then
    echo "dciodvfy: errors in $f:"; grep '^Error' "$dir/dciodvfy.txt"; failed=1
  fi
done
[[ $n -ge 12 ]] || { echo "only $n result objects written"; cat "$dir/predict.log"; exit 1; }
for f in "$dir"/out/*.sr.dcm "$dir"/out-flagging/*.sr.dcm; do
  # Java 17's XSLT limits are far below what pixelmed's compiled templates need: lift them.
  java -Djdk.xml.xpathExprOpLimit=0 -Djdk.xml.xpathExprGrpLimit=0 -Djdk.xml.xpathTotalOpLimit=0 \
    -cp /usr/share/java/pixelmed.jar com.pixelmed.validate.DicomSRValidator "$f" >"$dir/srv.txt" 2>&1 || true
  if ! grep -q 'Found Root Template TID_1500' "$dir/srv.txt" || grep -q '^Error' "$dir/srv.txt"; then
    echo "DicomSRValidator: $f:"; cat "$dir/srv.txt"; failed=1
  fi
  dsrdump "$f" >"$dir/dsrdump.txt" 2>&1 || { echo "dsrdump failed on $f"; cat "$dir/dsrdump.txt"; failed=1; }
  grep -q 'Imaging Measurement Report' "$dir/dsrdump.txt" || { echo "dsrdump: no report tree in $f"; failed=1; }
done
/usr/bin/python3 "$here/check_results.py" "$dir/predict.csv" "$dir/out" || failed=1
/usr/bin/python3 "$here/check_results.py" "$dir/predict-flagging.csv" "$dir/out-flagging" --expect-regions \
  || failed=1
echo "dicom_check: $n objects checked"
exit $failed
