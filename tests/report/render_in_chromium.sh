#!/usr/bin/env bash
# Renders the example report in headless Chromium and checks that every figure was drawn: the page's own
# render check writes "plots-ok:6/6" into the title. Also takes a screenshot and checks it is not blank.
# Usage: render_in_chromium.sh REPORT_EXAMPLE_BINARY     Exit 77 (skipped) when Chromium is not installed.
set -euo pipefail

example=${1:?usage: render_in_chromium.sh REPORT_EXAMPLE_BINARY}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "render_in_chromium: $chromium not found (apt-get install chromium); skipping"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$example" "$work/report.html"

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --disable-extensions --disable-dev-shm-usage
       --hide-scrollbars --virtual-time-budget=5000)

# Chromium prints harmless D-Bus and GPU warnings on stderr; keep them for a failure message only.
timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/dom.err" || {
  echo "render_in_chromium: chromium --dump-dom failed"; tail -n 20 "$work/dom.err"; exit 1; }

title=$(grep -o '<title>[^<]*</title>' "$work/dom.html" | head -n 1 | sed -e 's/<[^>]*>//g')
check=$(grep -o '<div id="render-check"[^>]*>[^<]*' "$work/dom.html" | sed -e 's/<[^>]*>//' || true)
echo "render_in_chromium: title '$title'; $check"
if [[ $title != "plots-ok:6/6" ]]; then
  echo "render_in_chromium: FAIL: expected title plots-ok:6/6"
  exit 1
fi

# A thin run (notes instead of plots, a single epoch as a point) must pass the same check.
"$example" "$work/sparse.html" --sparse
timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --dump-dom "file://$work/sparse.html" >"$work/sparse_dom.html" 2>>"$work/dom.err" || true
sparse=$(grep -o '<title>[^<]*</title>' "$work/sparse_dom.html" | head -n 1 | sed -e 's/<[^>]*>//g')
echo "render_in_chromium: sparse report, title '$sparse'"
if [[ $sparse != "plots-ok:6/6" ]]; then
  echo "render_in_chromium: FAIL: the sparse report should read plots-ok:6/6"
  exit 1
fi

# The check must be able to fail: hide the precision-recall curve's strokes and expect it to be reported.
sed -e 's|</head>|<style>#fig-pr .mark{stroke:none}</style></head>|' "$work/report.html" >"$work/broken.html"
timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --dump-dom "file://$work/broken.html" >"$work/broken_dom.html" 2>>"$work/dom.err" || true
broken=$(grep -o '<title>[^<]*</title>' "$work/broken_dom.html" | head -n 1 | sed -e 's/<[^>]*>//g')
echo "render_in_chromium: with the PR curve hidden, title '$broken'"
if [[ $broken != "plots-missing:fig-pr" ]]; then
  echo "render_in_chromium: FAIL: the render check did not notice a hidden curve"
  exit 1
fi

timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --window-size=1280,4000 --screenshot="$work/shot.png" "file://$work/report.html" \
  >"$work/shot.out" 2>"$work/shot.err" || {
  echo "render_in_chromium: chromium --screenshot failed"; tail -n 20 "$work/shot.err"; exit 1; }
size=$(stat -c %s "$work/shot.png" 2>/dev/null || echo 0)
echo "render_in_chromium: screenshot $size bytes"
if ((size < 100000)); then
  echo "render_in_chromium: FAIL: screenshot is only $size bytes (blank page?)"
  exit 1
fi
echo "render_in_chromium: OK"
