#!/usr/bin/env python3
"""Overload benchmark: what an attacker and a burst cost a running all-in-one.

    cargo build --release --bin spoor-all-in-one --bin spoor-tracegen
    .venv/bin/python scripts/bench-overload.py

Starts the release all-in-one (memory store, open-files limit 1024) and
prints one JSON object: RSS at rest, under 1,000 stalled gRPC streams that
announce 4 MB each, and after they time out; slowloris on the query port
(1,100 unfinished requests): connections refused, ingest latency meanwhile;
query latency p50/p99 while spoor-tracegen loads ingest flat out. The
figures go to docs/benchmarks.md with the machine and date.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "integration-tests"))

import requests  # noqa: E402

import conftest  # noqa: E402
from test_hardening import (  # noqa: E402
    otlp_json_trace, raise_own_file_limit, stalled_grpc_streams, unfinished_requests)


def release_dir() -> Path:
    return conftest.bin_dir().parent / "release"


def timed_get(url, **params):
    started = time.perf_counter()
    resp = requests.get(url, params=params, timeout=30)
    resp.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main():
    os.environ["SPOOR_BIN_DIR"] = str(release_dir())
    conftest.bin_dir.cache_clear()
    raise_own_file_limit(8192)
    out = {}
    spoor = conftest.Spoor(("--log-level=warn", "--server.body-idle-timeout=5s",
                            "--server.read-header-timeout=5s"), nofile=1024)
    try:
        body = otlp_json_trace(f"{0xbe7c:032x}", 500, service="overload")
        requests.post(spoor.otlp_http + "/v1/traces", json=body, timeout=10).raise_for_status()
        out["rss_at_rest_mb"] = round(spoor.rss_mb(), 1)

        # 10 connections x 100 streams, each announcing 4 MB and sending 5 bytes
        conns = [stalled_grpc_streams(spoor.ports["otlp_grpc"], 100) for _ in range(10)]
        peak = 0.0
        deadline = time.time() + 3
        while time.time() < deadline:
            peak = max(peak, spoor.rss_mb())
            time.sleep(0.1)
        out["rss_under_stalled_grpc_streams_mb"] = round(peak, 1)
        out["grpc_buffered_bytes_under_attack"] = spoor.metric("spoor_server_grpc_buffered_bytes")
        time.sleep(6)
        out["stalled_grpc_calls_failed"] = spoor.metric("spoor_server_request_bodies_stalled_total",
                                                        '{listener="OTLP gRPC"}')
        out["rss_after_streams_timed_out_mb"] = round(spoor.rss_mb(), 1)
        for c in conns:
            c.close()

        # slowloris on the query port
        slow = unfinished_requests(spoor.ports["query_http"], 1100)
        started = time.perf_counter()
        requests.post(spoor.otlp_http + "/v1/traces", json=otlp_json_trace(f"{0xbe7d:032x}", 10),
                      timeout=10).raise_for_status()
        out["ingest_ms_during_slowloris"] = round((time.perf_counter() - started) * 1000, 1)
        out["query_connections_refused"] = spoor.metric("spoor_server_connections_refused_total",
                                                        '{listener="query HTTP"}')
        time.sleep(6)
        out["query_ms_after_header_timeout"] = round(timed_get(spoor.query + "/api/services"), 1)
        for s in slow:
            s.close()

        # query latency while ingest runs flat out
        tracegen = subprocess.Popen(
            [str(release_dir() / "spoor-tracegen"), "send", "--protocol", "otlp-grpc",
             "--endpoint", spoor.otlp_grpc, "--traces", "60000", "--batch-traces", "50", "--workers", "4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        latencies = []
        while tracegen.poll() is None and len(latencies) < 400:
            latencies.append(timed_get(spoor.query + "/api/traces", service="overload", lookback="1h", limit="20"))
        tracegen.wait(timeout=120)
        latencies.sort()
        out["query_requests_under_ingest"] = len(latencies)
        if latencies:
            out["query_p50_ms_under_ingest"] = round(statistics.median(latencies), 1)
            out["query_p99_ms_under_ingest"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)
        out["queue_full_refusals"] = spoor.metric("spoor_collector_spans_rejected_total",
                                                  '{transport="otlp_grpc",reason="queue_full"}')
        out["rss_end_mb"] = round(spoor.rss_mb(), 1)
    finally:
        out["exit_code_on_sigterm"] = spoor.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
