#!/usr/bin/env bash
# Agent UDP ingest benchmark: spoor-tracegen sends Agent.emitBatch datagrams
# (Thrift compact) to spoor-agent, which forwards over gRPC to spoor-collector
# on the memory store. Per-core figures divide spans forwarded by the agent's
# own CPU time. Prints JSON lines.
#
#   scripts/bench-agent.sh [traces-per-packet] [traces] [rate]
#
# traces-per-packet: 1 (10 spans per datagram, default) or 10 (100 spans);
# rate: target spans/s over all senders, 0 (default) for flat out.
set -euo pipefail
cd "$(dirname "$0")/.."
per_packet=${1:-1}
traces=${2:-100000}
rate=${3:-0}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin spoor-agent --bin spoor-collector --bin spoor-tracegen >&2
bin="$target/release"

"$bin/spoor-collector" --log-level=warn --memory.max-traces=0 --memory.max-bytes=8000000000 \
  --collector.queue-size=200000 --collector.otlp.enabled=false &
collector=$!
"$bin/spoor-agent" --log-level=warn --agent.udp.queue-size=10000 \
  --agent.udp.socket-buffer-size=8388608 --reporter.grpc.host-port=127.0.0.1:14250 &
agent=$!
trap 'kill $agent $collector 2>/dev/null || true' EXIT
until curl -sf localhost:14269/ >/dev/null && curl -sf localhost:14271/ >/dev/null; do sleep 0.1; done

cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
metric() { curl -s localhost:14271/metrics | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s + 0 }'; }

cpu_before=$(cpu $agent)
"$bin/spoor-tracegen" send --protocol jaeger-udp-compact --endpoint 127.0.0.1:6831 \
  --traces "$traces" --batch-traces "$per_packet" --workers 2 --services 1 --rate "$rate" \
  | tee /tmp/spoor-bench-agent.json
# forwarding finishes shortly after the last datagram
sleep 2
cpu_after=$(cpu $agent)
python3 - "$cpu_before" "$cpu_after" "$(metric spoor_agent_spans_forwarded_total)" \
  "$(metric spoor_agent_packets_received_total)" "$(metric spoor_agent_packets_dropped_total)" \
  "$(metric spoor_agent_decode_errors_total)" "$(metric spoor_agent_batches_dropped_total)" \
  "$(metric spoor_agent_kernel_drops_total)" <<'PY'
import json, sys
cpu0, cpu1, forwarded, received, dropped, errors, batches_dropped, kernel = map(float, sys.argv[1:])
cpu = cpu1 - cpu0
print(json.dumps({
    "agent_cpu_seconds": round(cpu, 3),
    "spans_forwarded": int(forwarded),
    "spans_per_agent_cpu_second": round(forwarded / cpu) if cpu else None,
    "packets_received": int(received),
    "packets_dropped_queue_full": int(dropped),
    "decode_errors": int(errors),
    "batches_dropped_buffer_full": int(batches_dropped),
    "datagrams_dropped_by_kernel": int(kernel),
}))
PY
