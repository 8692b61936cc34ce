#!/usr/bin/env bash
# Screenshots of `inkwell dashboard` over a real runs folder, taken with Debian's headless chromium.
# The automated browser test is Tests/DashboardTests/BrowserTests.swift; this is for looking at
# your own runs the same way:
#   scripts/dashboard_screenshot.sh [RUNS_DIR] [PAGE] [OUT.png]
#   scripts/dashboard_screenshot.sh runs '#/run/my-run' my-run.png
# PAGE is the part after the address: '#/' (overview), '#/run/<id>', '#/compare', '#/pipeline/<id>'.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-runs}
page=${2:-#/}
out=${3:-.build/test-artifacts/dashboard-manual.png}
inkwell=${INKWELL:-.build/debug/inkwell}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "chromium is not installed: run 'apt-get update && apt-get install -y chromium'" >&2; exit 1; }
[ -x "$inkwell" ] || { echo "$inkwell is missing: run 'swift build' first" >&2; exit 1; }

log=$(mktemp)
profile=$(mktemp -d)
"$inkwell" dashboard --runs "$runs" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$log" "$profile"' EXIT

# The server prints its address once it listens; wait for it (bounded).
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "the dashboard did not start within 10 s" >&2; cat "$log" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
timeout 90 "$chromium" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
  --user-data-dir="$profile" --no-first-run --disable-background-networking --disable-component-update \
  --window-size=1280,2000 --virtual-time-budget=8000 --screenshot="$out" "$url$page" 2>/dev/null
echo "$out"
