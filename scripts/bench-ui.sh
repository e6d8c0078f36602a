#!/usr/bin/env bash
# Time to first render of a 10,000- and a 50,000-span trace in the web UI
# (Debian's headless Chromium via playwright-core), and the UI's size.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin spoor-all-in-one --bin spoor-tracegen >&2
bin="$target/release"
dir=$(mktemp -d)
python3 - "$dir" <<'PY'
import json, sys
sys.path.insert(0, "integration-tests")
from test_ui import big_trace
for n, trace_id in ((10_000, 0xb10), (50_000, 0xb50)):
    json.dump(big_trace(n, trace_id), open(f"{sys.argv[1]}/big-{n}.json", "w"))
PY
"$bin/spoor-all-in-one" --log-level=warn --memory.max-traces=0 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
until curl -sf localhost:14269/ >/dev/null; do sleep 0.1; done
"$bin/spoor-tracegen" load --endpoint 127.0.0.1:14250 "$dir"/big-10000.json "$dir"/big-50000.json >&2
node integration-tests/node/ui-bench.mjs http://127.0.0.1:16686/ 0000000000000b10 0000000000000b50
python3 - <<'PY'
import glob, gzip, os
files = glob.glob("crates/query/ui/*.js") + glob.glob("crates/query/ui/*.css")
raw = sum(os.path.getsize(f) for f in files)
gz = sum(len(gzip.compress(open(f, "rb").read(), 9)) for f in files)
print(f'{{"ui_js_css_bytes": {raw}, "ui_js_css_gzip_bytes": {gz}, "files": {len(files)}}}')
PY
