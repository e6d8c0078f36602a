#!/usr/bin/env bash
# The all-in-one's UDP path: spoor-tracegen sends Agent.emitBatch datagrams
# (Thrift compact, 10-span traces) to spoor-all-in-one's agent port, whose
# agent hands them to its collector and the memory store. Prints one JSON
# line: spans stored per CPU second of the whole all-in-one.
#
#   scripts/bench-aio-udp.sh [traces] [rate] [all-in-one binary]
#
# The binary defaults to this tree's release build; pass another one (an
# older build) to compare two in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
traces=${1:-100000}
rate=${2:-100000}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin spoor-all-in-one --bin spoor-tracegen >&2
aio=${3:-$target/release/spoor-all-in-one}

"$aio" --log-level=warn --memory.max-traces=0 --memory.max-bytes=8000000000 \
  --collector.queue-size=200000 --agent.udp.queue-size=10000 \
  --agent.udp.socket-buffer-size=8388608 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf localhost:14269/ >/dev/null; do sleep 0.1; done

cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
metric() { curl -s localhost:14269/metrics | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s + 0 }'; }

cpu_before=$(cpu $pid)
"$target/release/spoor-tracegen" send --protocol jaeger-udp-compact --endpoint 127.0.0.1:6831 \
  --traces "$traces" --batch-traces 1 --workers 2 --services 1 --rate "$rate" >/dev/null
sleep 2
cpu_after=$(cpu $pid)
python3 - "$cpu_before" "$cpu_after" "$(metric spoor_collector_spans_accepted_total)" \
  "$(metric spoor_agent_packets_received_total)" "$(metric spoor_agent_packets_dropped_total)" \
  "$(metric spoor_agent_batches_dropped_total)" "$(metric spoor_agent_kernel_drops_total)" <<'PY'
import json, sys
cpu0, cpu1, accepted, received, dropped, batches_dropped, kernel = map(float, sys.argv[1:])
cpu = cpu1 - cpu0
print(json.dumps({
    "cpu_seconds": round(cpu, 3),
    "spans_accepted": int(accepted),
    "spans_per_cpu_second": round(accepted / cpu) if cpu else None,
    "packets_received": int(received),
    "packets_dropped_queue_full": int(dropped),
    "batches_dropped_buffer_full": int(batches_dropped),
    "datagrams_dropped_by_kernel": int(kernel),
}))
PY
