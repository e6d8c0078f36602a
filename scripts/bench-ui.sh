#!/usr/bin/env bash
# Time to first render of large traces in the web UI (Debian's headless
# Chromium via playwright-core), and the UI's size.
#
#     scripts/bench-ui.sh [SPANS...]      (default: 10000 50000)
#
# Each trace of N spans has the trace id N (in hex); RUNS (default 6) loads of
# each are timed, the first counted apart as the cold one.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin spoor-all-in-one --bin spoor-tracegen >&2
bin="$target/release"
dir=$(mktemp -d)
sizes=${*:-10000 50000}
python3 - "$dir" $sizes <<'PY'
import json, sys
sys.path.insert(0, "integration-tests")
from test_ui import big_trace
for n in map(int, sys.argv[2:]):
    json.dump(big_trace(n, n), open(f"{sys.argv[1]}/big-{n}.json", "w"))
PY
# room for one trace of a million spans (a trace may hold 1/64 of the store)
"$bin/spoor-all-in-one" --log-level=warn --memory.max-traces=0 --memory.max-bytes=17179869184 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
until curl -sf localhost:14269/ >/dev/null; do sleep 0.1; done
"$bin/spoor-tracegen" load --endpoint 127.0.0.1:14250 "$dir"/big-*.json >&2
# shellcheck disable=SC2046
node integration-tests/node/ui-bench.mjs http://127.0.0.1:16686/ $(printf '%016x ' $sizes)
python3 - <<'PY'
import glob, gzip, os
files = glob.glob("crates/query/ui/*.js") + glob.glob("crates/query/ui/*.css")
raw = sum(os.path.getsize(f) for f in files)
gz = sum(len(gzip.compress(open(f, "rb").read(), 9)) for f in files)
print(f'{{"ui_js_css_bytes": {raw}, "ui_js_css_gzip_bytes": {gz}, "files": {len(files)}}}')
PY
