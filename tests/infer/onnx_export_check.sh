#!/usr/bin/env bash
# The ONNX export end to end: onnx_export_example writes a ResNet-18 with seeded random weights, then
#   (a) onnx.checker.check_model(full_check=True) accepts it,
#   (b) ONNX Runtime (onnxruntime-node, tests/node/run_onnx.js) runs it on [2,1,64,80] and [1,1,96,96],
#   (c) an independent torch.nn.functional reference computes the same logits from the weights:
#       max abs difference <= 1e-4.
# Usage: onnx_export_check.sh ONNX_EXPORT_EXAMPLE_BINARY
# Exit 77 (skipped) when node, onnxruntime-node (scripts/setup.sh) or Python's onnx / torch are missing.
# PYTHON (default /usr/bin/python3) and NODE (default node) pick the interpreters.
set -euo pipefail

example=${1:?usage: onnx_export_check.sh ONNX_EXPORT_EXAMPLE_BINARY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
node_dir=$here/../node
python=${PYTHON:-/usr/bin/python3}
node=${NODE:-node}

skip() { echo "onnx_export_check: $1; skipping"; exit 77; }
command -v "$node" >/dev/null || skip "$node not found (apt-get install nodejs)"
[[ -d $node_dir/node_modules/onnxruntime-node ]] ||
  skip "onnxruntime-node not installed (scripts/setup.sh, or: cd tests/node && npm ci --ignore-scripts)"
"$python" -c 'import onnx' 2>/dev/null || skip "$python cannot import onnx (apt-get install python3-onnx)"
"$python" -c 'import torch' 2>/dev/null || skip "$python cannot import torch (the reference needs it)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$example" "$work"
"$python" "$here/onnx_export_check.py" prepare "$work"
for c in a:2,1,64,80:2,2 b:1,1,96,96:1,2; do
  IFS=: read -r name shape want <<<"$c"
  got=$("$node" "$node_dir/run_onnx.js" "$work/model.onnx" "$work/input_$name.bin" "$shape" \
    "$work/output_$name.bin")
  echo "onnxruntime [$shape]: $got"
  if [[ $got != *"\"output\":\"logits\""* || $got != *"\"shape\":[$want]"* ]]; then
    echo "onnx_export_check: FAIL: expected output logits of shape [$want]"
    exit 1
  fi
done
"$python" "$here/onnx_export_check.py" compare "$work"
echo "onnx_export_check: OK"
