#!/usr/bin/env bash
# The page in a real browser: starts `wristssl serve` on a bundle, has tests/serve/browser_test.js (Debian's
# Chromium driven by puppeteer-core) upload a bundled 16-bit PNG through the page's file input, and checks the
# probability shown equals `wristssl predict`'s for the same file; then stops the server with SIGTERM and
# checks it exits cleanly. Usage: browser_check.sh WRISTSSL_BINARY EXPORT_EXAMPLE_BINARY [SCREENSHOT.png]
# Exit 77 (skipped) when node, puppeteer-core or Chromium is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wristssl=$1 example=$2
command -v node >/dev/null || { echo "skip: node not installed"; exit 77; }
dir="$(mktemp -d)"
server=""
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$example" "$dir" >/dev/null  # writes $dir/model.wristssl (an untrained ResNet-18) and model-flagging.wristssl
# The same weights with a threshold that calls every image fracture, so that the page shows boxes;
# MODEL and IMAGE override both (e.g. for the README's screenshot).
model=${MODEL:-$dir/model-flagging.wristssl}
png=${IMAGE:-$here/../../samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png}
row=$("$wristssl" predict --model "$model" "$png" 2>/dev/null | awk 'NR == 2')
expected=$(echo "$row" | awk -F, '{print $2}')
export WRISTSSL_EXPECTED_BOXES=$(echo "$row" | awk -F, '{print $5}')
[[ -n $expected ]] || { echo "browser_check: predict gave no probability"; exit 1; }
port=$((20000 + RANDOM % 20000))
"$wristssl" --threads 2 serve --model "$model" --port "$port" 2>"$dir/serve.log" &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
shot=${3:-$dir/page.png}
set +e
node "$here/browser_test.js" "http://127.0.0.1:$port/" "$png" "$expected" "$shot"
rc=$?
set -e
[[ $rc == 0 ]] || { echo "browser_check: browser test exit $rc; server log:"; tail -n 20 "$dir/serve.log"; exit $rc; }
kill -TERM "$server"
wait "$server"
status=$?
server=""
grep -q '"endpoint":"/v1/predict"' "$dir/serve.log" || { echo "browser_check: no JSON log line for /v1/predict"; exit 1; }
grep -q "serve: stopped" "$dir/serve.log" || { echo "browser_check: no graceful stop"; exit 1; }
echo "browser_check: passed (predict says $expected with $WRISTSSL_EXPECTED_BOXES boxes shown; server stopped with status $status on SIGTERM)"
exit "$status"
