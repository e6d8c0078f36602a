"""The web UI in real headless Chromium (Debian's chromium, driven by
playwright-core from integration-tests/node/ui.mjs) against an all-in-one
holding Jaeger's fixture traces, a small multi-service trace and a
10,000-span trace."""
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, bin_dir

FIXTURES = REPO / "testdata" / "jaeger-integration" / "traces"


def b64(n, size):
    return base64.b64encode(n.to_bytes(size, "big")).decode()


def span(trace, span_id, service, op, start_us, duration_us, parent=None, tags=(), logs=()):
    def at(us):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"
    return {
        "logs": [{"timestamp": at(t), "fields": [{"key": k, "vStr": v} for k, v in fields]} for t, fields in logs],
        "traceId": b64(trace, 16), "spanId": b64(span_id, 8), "operationName": op,
        "references": [{"traceId": b64(trace, 16), "spanId": b64(parent, 8)}] if parent else [],
        "startTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start_us // 1_000_000))
                     + f".{start_us % 1_000_000:06d}Z",
        "duration": f"{duration_us * 1000}ns",
        "tags": [{"key": k, "vType": "BOOL", "vBool": v} if isinstance(v, bool)
                 else {"key": k, "vStr": str(v)} for k, v in tags],
        "process": {"serviceName": service, "tags": [{"key": "host", "vStr": "node-1"}]},
    }


def shop_trace():
    t0 = 1_700_000_000_000_000
    return {"spans": [
        span(0xabc1, 1, "frontend", "GET /checkout", t0, 120_000, tags=[("http.status_code", 200)]),
        span(0xabc1, 2, "cart", "load-cart", t0 + 5_000, 40_000, parent=1,
             logs=[(t0 + 30_000, [("event", "cache-miss"), ("key", "cart:7")])]),
        span(0xabc1, 3, "mysql", "SELECT cart", t0 + 10_000, 20_000, parent=2),
        span(0xabc1, 4, "payment", "charge", t0 + 50_000, 60_000, parent=1,
             tags=[("error", True), ("payment.provider", "acme")],
             logs=[(t0 + 55_000, [("event", "declined")])]),
    ]}


def live_trace():
    """The monitor page's trace (loaded to start just now)."""
    t0 = 1_700_000_000_000_000
    return {"spans": [
        span(0x11fe, 1, "live-shop", "GET /live", t0, 250_000, tags=[("span.kind", "server")]),
        span(0x11fe, 2, "live-shop", "POST /live", t0 + 1_000, 40_000,
             tags=[("span.kind", "server"), ("error", True)]),
    ]}


def big_trace(n=10_000, trace=0xb16):
    t0 = 1_700_000_000_000_000
    spans = [span(trace, 1, "big-service", "root", t0, 10_000_000)]
    for i in range(2, n + 1):
        parent = max(1, i // 10)
        spans.append(span(trace, i, "big-service", f"step-{i % 50}", t0 + i * 900, 800, parent=parent))
    return {"spans": spans}


def node_ok():
    return (shutil.which("node") and Path("/usr/bin/chromium").exists()
            and (REPO / "integration-tests" / "node" / "node_modules" / "playwright-core").exists())


@pytest.mark.skipif(not node_ok(), reason="needs node, playwright-core (npm ci) and Debian's chromium")
def test_ui_in_headless_chromium(start_spoor, tmp_path):
    # link patterns in the Jaeger UI's format (jaeger-ui#578); the last must
    # never become a link
    (tmp_path / "ui-config.json").write_text(json.dumps({"linkPatterns": [
        {"type": "process", "key": "host", "url": "https://logs.example/?host=#{host}&trace=#{traceID}",
         "text": "Logs of #{host}"},
        {"type": "traces", "url": "https://apm.example/trace/#{traceID}", "text": "Trace in APM"},
        {"type": "tags", "key": "payment.provider", "url": "javascript:alert(1)", "text": "bad"},
    ]}))
    spoor = start_spoor(f"--query.ui-config={tmp_path / 'ui-config.json'}")
    (tmp_path / "shop.json").write_text(json.dumps(shop_trace()))
    (tmp_path / "big.json").write_text(json.dumps(big_trace()))
    (tmp_path / "live.json").write_text(json.dumps(live_trace()))
    for i in range(25):  # more results than a page holds
        (tmp_path / f"paged-{i}.json").write_text(json.dumps({"spans": [
            span(0x9a9e0000 + i, 1, "paged-shop", f"GET /item/{i}", 1_700_000_000_000_000 + i * 1000, 5_000)]}))
    files = [str(tmp_path / "shop.json"), str(tmp_path / "big.json"),
             *(str(tmp_path / f"paged-{i}.json") for i in range(25)),
             str(FIXTURES / "example_trace.json"),
             str(FIXTURES / "tags_escaped_operator_trace_1.json"),
             str(FIXTURES / "tags_escaped_operator_trace_2.json")]
    subprocess.run([str(bin_dir() / "spoor-tracegen"), "load",
                    f"--endpoint=127.0.0.1:{spoor.ports['grpc']}", *files], check=True)
    # the monitor's trace: started just now, as RED metrics count arrivals
    subprocess.run([str(bin_dir() / "spoor-tracegen"), "load", "--start-ago=2s",
                    f"--endpoint=127.0.0.1:{spoor.ports['grpc']}", str(tmp_path / "live.json")], check=True)
    spoor.wait_for_traces("frontend", 4)
    spoor.wait_for_traces("live-shop", 2)
    spoor.wait_for_traces("big-service", 10_000, limit=1)

    # an OTLP JSON file and a Jaeger JSON download for the "open a file" check
    otlp = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "otlp-file-service"}}]},
        "scopeSpans": [{"scope": {"name": "file-lib", "version": "0.9"}, "spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "name": "from-a-file", "kind": 2, "startTimeUnixNano": "1700000000000000000",
             "endTimeUnixNano": "1700000000250000000",
             "attributes": [{"key": "file.kind", "value": {"stringValue": "otlp"}}],
             "status": {"code": 2, "message": "boom"}},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175",
             "parentSpanId": "eee19b7ec3c1b174", "name": "child-in-file",
             "startTimeUnixNano": "1700000000010000000", "endTimeUnixNano": "1700000000020000000"},
        ]}]}]}
    (tmp_path / "otlp.json").write_text(json.dumps(otlp))
    jaeger_json = spoor.get("/api/traces/000000000000abc1").json()
    (tmp_path / "jaeger.json").write_text(json.dumps(jaeger_json))

    shots = Path(os.environ.get("SPOOR_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["node", str(REPO / "integration-tests" / "node" / "ui.mjs"), spoor.query + "/",
         str(shots), str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
