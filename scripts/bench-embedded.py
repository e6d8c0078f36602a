#!/usr/bin/env python3
"""The embedded store's benchmark (issue 14): the tracegen workload into the
all-in-one on the memory store and on the embedded store's blocks engine, one
after the other in one run, so the embedded/memory ratios come from the same
machine state. Acknowledge-after-write is on for both (their default).

    scripts/bench-embedded.py [--traces 1000000] [--requests 200]

--traces counts 10-span traces (1,000,000 = 10,000,000 spans). Prints one
JSON object per store and one with the ratios; docs/benchmarks.md records
the figures with the machine and date.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "http://127.0.0.1:14269"


def target_dir():
    out = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"],
                         cwd=ROOT, capture_output=True, check=True, text=True).stdout
    return json.loads(out)["target_directory"]


def metrics():
    text = urllib.request.urlopen(ADMIN + "/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run(name, args, bin_dir, traces, requests, workers):
    server = subprocess.Popen([os.path.join(bin_dir, "spoor-all-in-one"), "--log-level=warn", *args])
    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes(server.pid))
            time.sleep(0.2)
    try:
        deadline = time.time() + 30
        while True:
            try:
                metrics()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        threading.Thread(target=watch, daemon=True).start()
        cpu0 = cpu_seconds(server.pid)
        sent = json.loads(subprocess.run(
            [os.path.join(bin_dir, "spoor-tracegen"), "send", "--protocol", "otlp-grpc",
             "--endpoint", "127.0.0.1:4317", "--traces", str(traces), "--batch-traces", "50",
             "--workers", str(workers)],
            check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        spans = traces * 10
        while metrics().get("spoor_collector_spans_written_total", 0) < spans:
            time.sleep(0.2)
        # the blocks written from the heads cut during the run, and their
        # merges, are part of its cost: wait until the blocks stop changing
        settled, last = 0, None
        while settled < 15:
            m = metrics()
            now = (m.get("spoor_embedded_frozen_heads", 0), m.get("spoor_embedded_blocks", 0))
            settled = settled + 1 if now == last and now[0] == 0 else 0
            last = now
            time.sleep(0.2)
        cpu = cpu_seconds(server.pid) - cpu0
        m = metrics()
        query = json.loads(subprocess.run(
            [os.path.join(bin_dir, "spoor-tracegen"), "query", "--traces", str(traces),
             "--requests", str(requests)],
            check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        result = {
            "store": name,
            "spans": spans,
            "spans_per_server_cpu_second": round(spans / cpu),
            "client_spans_per_second": sent["spans_per_second"],
            "client_request_p50_ms": sent["request_latency"]["p50_ms"],
            "client_request_p99_ms": sent["request_latency"]["p99_ms"],
            "peak_rss_mib": round(peak[0] / 2**20),
            "trace_by_id_p99_ms": query["trace_by_id"]["p99_ms"],
            "trace_by_id_not_found": query["trace_by_id_not_found"],
        }
        for kind in ("service", "operation", "tag", "duration"):
            result[f"search_{kind}_p50_ms"] = query[f"search_{kind}"]["p50_ms"]
            result[f"search_{kind}_p99_ms"] = query[f"search_{kind}"]["p99_ms"]
        if "spoor_embedded_block_spans" in m:
            block_spans = m["spoor_embedded_block_spans"]
            result.update({
                "blocks": int(m["spoor_embedded_blocks"]),
                "block_spans": int(block_spans),
                "head_spans": int(m["spoor_embedded_head_spans"]),
                "block_bytes_per_span": round(m["spoor_embedded_block_disk_bytes"] / block_spans, 1)
                if block_spans else None,
                "block_memory_mib": round(m["spoor_embedded_block_memory_bytes"] / 2**20, 1),
            })
        if "spoor_memory_bytes" in m:
            result["memory_bytes_per_span"] = round(m["spoor_memory_bytes"] / spans, 1)
        return result
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--traces", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    o = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "spoor-all-in-one", "--bin", "spoor-tracegen"],
                   cwd=ROOT, check=True, stdout=sys.stderr)
    bin_dir = os.path.join(target_dir(), "release")
    data = tempfile.mkdtemp(prefix="spoor-bench-embedded-")
    try:
        memory = run("memory", ["--span-storage.type=memory", "--memory.max-traces=0",
                                "--memory.max-bytes=16000000000"],
                     bin_dir, o.traces, o.requests, o.workers)
        print(json.dumps(memory), flush=True)
        blocks = run("embedded (blocks)", ["--span-storage.type=embedded", "--embedded.engine=blocks",
                                           f"--embedded.data-dir={data}"],
                     bin_dir, o.traces, o.requests, o.workers)
        print(json.dumps(blocks), flush=True)
        print(json.dumps({"embedded/memory": {
            k: round(blocks[k] / memory[k], 2) for k in memory
            if isinstance(memory[k], (int, float)) and memory[k] and k in blocks}}))
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
