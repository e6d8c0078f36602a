"""Bad input gets a clear 4xx and the process keeps serving."""
import gzip
import time

import requests

from test_otlp import emit, exporter_for


def test_bad_requests_are_refused_and_spoor_keeps_serving(spoor):
    url = spoor.otlp_http + "/v1/traces"
    garbage = requests.post(url, data=b"\xff\x00garbage", headers={"content-type": "application/x-protobuf"})
    assert garbage.status_code == 400

    too_big = requests.post(url, data=b"\x00" * (5 * 1024 * 1024),
                            headers={"content-type": "application/x-protobuf"})
    assert too_big.status_code == 413

    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024))
    inflated = requests.post(url, data=bomb, headers={
        "content-type": "application/x-protobuf", "content-encoding": "gzip"})
    assert inflated.status_code == 413

    wrong_type = requests.post(url, data=b"{}", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415

    now = time.time_ns()
    times = {"startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now)}
    zero_id = requests.post(url, headers={"content-type": "application/json"}, json={
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "zero"}}]},
            "scopeSpans": [{"spans": [
                {"traceId": "00000000000000000000000000000000", "spanId": "0000000000000001", "name": "bad", **times},
                {"traceId": "00000000000000000000000000000abc", "spanId": "0000000000000002", "name": "good", **times},
            ]}],
        }]})
    assert zero_id.status_code == 200
    # proto3 JSON allows int64 as a number or a string
    assert int(zero_id.json()["partialSuccess"]["rejectedSpans"]) == 1
    assert "trace id is zero" in zero_id.json()["partialSuccess"]["errorMessage"]

    for path, params, needle in [
        ("/api/traces/not-an-id", {}, "'traceID'"),
        ("/api/traces", {"service": "zero", "limit": "lots"}, "'limit'"),
        ("/api/traces", {"service": "zero", "minDuration": "10"}, "'minDuration'"),
        ("/api/traces", {"service": "zero", "start": "yesterday"}, "'start'"),
        ("/api/traces", {}, "'service'"),
    ]:
        resp = spoor.get(path, **params)
        assert resp.status_code == 400, path
        assert needle in resp.json()["errors"][0]["msg"]
    assert spoor.get("/api/traces/00000000000000000000000000000bad").status_code == 404

    # still serving: health is green and a real client's spans are stored
    assert requests.get(spoor.admin + "/").status_code == 200
    emit(exporter_for("http", spoor), "after-bad-input")
    spoor.wait_for_traces("after-bad-input", 2)
    assert [t["spans"][0]["operationName"] for t in spoor.wait_for_traces("zero", 1)] == ["good"]

    metrics = requests.get(spoor.admin + "/metrics").text
    assert 'spoor_collector_requests_rejected_total{transport="otlp_http",reason="undecodable"} 1' in metrics
    assert 'spoor_collector_spans_rejected_total{transport="otlp_http",reason="invalid_trace_id"} 1' in metrics


def test_config_file_and_jaeger_env_names(start_spoor, tmp_path):
    config = tmp_path / "spoor.yaml"
    config.write_text("query:\n  base-path: /jaeger\nmemory:\n  max-traces: 5\n")
    spoor = start_spoor(f"--config-file={config}", env={"SPAN_STORAGE_TYPE": "memory"})
    assert spoor.get("/jaeger/api/services").json()["data"] == []
    assert spoor.get("/api/services").status_code == 404
    for i in range(8):
        emit(exporter_for("grpc", spoor), f"svc-{i}")
    deadline = time.time() + 15
    while "spoor_collector_spans_written_total 16" not in requests.get(spoor.admin + "/metrics").text:
        assert time.time() < deadline, "spans not written"
        time.sleep(0.1)
    metrics = requests.get(spoor.admin + "/metrics").text
    assert "spoor_memory_traces 5" in metrics
    assert "spoor_memory_evicted_traces_total 3" in metrics
