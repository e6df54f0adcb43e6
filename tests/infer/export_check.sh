#!/usr/bin/env bash
# The three exports against the native model: export_example writes them, export_check.py runs each in
# its own runtime. Usage: export_check.sh EXPORT_EXAMPLE_BINARY. Exit 77 (skip) when a runtime is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null || { echo "skip: node not installed"; exit 77; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# Average pooling (the paper's ResNet), then log-sum-exp pooling of the fracture log-odds map.
for pooling in mean lse; do
  rm -rf "${dir:?}"/*
  echo "pooling: $pooling"
  if [[ $pooling == lse ]]; then "$1" "$dir" lse; else "$1" "$dir"; fi
  /usr/bin/python3 "$here/export_check.py" "$dir" "$here/../node/run_onnx.js"
done
