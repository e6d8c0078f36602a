#!/usr/bin/env bash
# Ingest and query benchmark of the all-in-one on the memory store, with
# spoor-tracegen as the load. Prints JSON lines; docs/benchmarks.md records
# the figures with the machine and date.
#
#   scripts/bench-ingest.sh [protocol] [traces]
#
# protocol: otlp-grpc (default), otlp-http or jaeger-grpc. traces: how many
# 10-span traces to send (default 100000, i.e. 1,000,000 spans).
set -euo pipefail
cd "$(dirname "$0")/.."
protocol=${1:-otlp-grpc}
traces=${2:-100000}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin spoor-all-in-one --bin spoor-tracegen >&2
bin="$target/release"

# SPOOR_ARGS adds server options, e.g. "--span-storage.type=embedded --embedded.data-dir=/tmp/d"
# shellcheck disable=SC2086
"$bin/spoor-all-in-one" --log-level=warn \
  --memory.max-traces=0 --memory.max-bytes=8000000000 \
  --collector.queue-size=200000 --collector.num-workers=8 ${SPOOR_ARGS:-} &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf localhost:14269/ >/dev/null; do sleep 0.1; done

# CPU seconds the server has used so far (utime + stime, in clock ticks)
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$pid/stat"; }
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }

case $protocol in
  otlp-grpc) endpoint=127.0.0.1:4317 ;;
  otlp-http) endpoint=http://127.0.0.1:4318 ;;
  jaeger-grpc) endpoint=127.0.0.1:14250 ;;
esac

rss_before=$(rss_kib)
cpu_before=$(cpu)
"$bin/spoor-tracegen" send --protocol "$protocol" --endpoint "$endpoint" \
  --traces "$traces" --batch-traces 50 --workers 4 | tee /tmp/spoor-bench-send.json
# let the queue drain before reading the counters
until curl -s localhost:14269/metrics | grep -q "^spoor_collector_queue_length 0"; do sleep 0.2; done
cpu_after=$(cpu)
rss_after=$(rss_kib)
written=$(curl -s localhost:14269/metrics | awk '/^spoor_collector_spans_written_total/ { print $2 }')
python3 - "$cpu_before" "$cpu_after" "$written" "$rss_before" "$rss_after" /tmp/spoor-bench-send.json <<'PY'
import json, sys
cpu0, cpu1, written, rss0, rss1, send = sys.argv[1:]
cpu = float(cpu1) - float(cpu0)
written = int(float(written))
sent = json.load(open(send))
print(json.dumps({
    "server_cpu_seconds": round(cpu, 3),
    "spans_written": written,
    "spans_per_server_cpu_second": round(written / cpu) if cpu else None,
    "rss_growth_bytes_per_span": round((int(rss1) - int(rss0)) * 1024 / written, 1),
    "wire_bytes_per_span": sent["bytes_per_span"],
}))
PY
"$bin/spoor-tracegen" query --traces "$traces" --requests 1000
