#!/usr/bin/env bash
# clang-format (.clang-format) on the C++ lines changed since BASE: checks by default (CI), rewrites with --fix.
# Only changed lines: the older code is not reformatted wholesale, and every change arrives formatted.
# Usage: scripts/format.sh [--fix] [BASE]    (BASE: a commit; default the previous one, HEAD~1)
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
if [[ ${1:-} == --fix ]]; then fix=1; shift; fi
base=${1:-HEAD~1}
if ! git rev-parse --verify -q "$base^{commit}" >/dev/null; then
  echo "format: no commit $base here (a shallow clone?): nothing to compare against, not checked"
  exit 0
fi
if ! command -v git-clang-format >/dev/null; then
  echo "format: git-clang-format not found (Debian: clang-format; scripts/setup.sh installs it)" >&2
  exit 1
fi
if ((fix)); then
  git clang-format --binary clang-format --extensions cpp,h "$base" -- src tools tests bench fuzz || true
  exit 0
fi
# Compares the tree as committed (the working tree's uncommitted edits are --fix's business).
out=$(git clang-format --binary clang-format --extensions cpp,h --diff "$base" HEAD -- src tools tests bench fuzz 2>&1 || true)
if [[ -z $out || $out == *"no modified files to format"* || $out == *"did not modify any files"* ]]; then
  echo "format: the C++ lines changed since $(git rev-parse --short "$base") are formatted"
  exit 0
fi
echo "$out"
echo "format: the lines above are not as clang-format (.clang-format) writes them; run scripts/format.sh --fix $base" >&2
exit 1
