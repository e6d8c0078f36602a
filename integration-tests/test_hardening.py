"""What an attacker can do to a running Spoor process, and what it must survive:
gRPC streams that announce large messages and stall, slowloris on HTTP, and
shutdown with half-sent requests."""
import resource
import socket
import struct
import time

import h2.config
import h2.connection
import pytest
import requests

from test_otlp import emit, exporter_for

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def raise_own_file_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def stalled_grpc_streams(port, streams, announced=4_000_000):
    """One HTTP/2 connection with `streams` calls, each announcing a message of
    `announced` bytes and sending 5 of them; returns the open socket."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    for i in range(streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", EXPORT),
                                (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                                ("te", "trailers")])
        conn.send_data(sid, b"\x00" + struct.pack(">I", announced) + b"\x0a\x03abc")
        sock.sendall(conn.data_to_send())
    return sock


def test_stalled_grpc_streams_cannot_exhaust_memory(start_spoor):
    spoor = start_spoor("--server.body-idle-timeout=3s")
    before = spoor.rss_mb()
    conns = [stalled_grpc_streams(spoor.ports["otlp_grpc"], 100) for _ in range(10)]
    time.sleep(1.5)
    during = spoor.rss_mb()
    # 1,000 streams announcing 4 MB each: before the fix each reserved its
    # announced size (4 GB in all); held bytes are now only what was received
    assert during - before < 150, f"RSS grew from {before:.0f} MB to {during:.0f} MB"
    assert spoor.metric("spoor_server_grpc_buffered_bytes") <= 1000 * 10
    # a real client still gets through while the streams hang
    emit(exporter_for("grpc", spoor), "during-h2-abuse")
    spoor.wait_for_traces("during-h2-abuse", 2)
    # the stalled calls are failed after the idle timeout and their bytes given back
    deadline = time.time() + 15
    while spoor.metric("spoor_server_request_bodies_stalled_total", '{listener="OTLP gRPC"}') < 1000:
        assert time.time() < deadline, "stalled gRPC calls were not timed out"
        time.sleep(0.2)
    assert spoor.metric("spoor_server_grpc_buffered_bytes") == 0
    for c in conns:
        c.close()


def partial_grpc_call(port, announced, sent):
    """An HTTP/2 connection with one call announcing `announced` bytes and
    sending `sent` of them; returns (socket, connection)."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", EXPORT),
                          (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
    payload = b"\x00" + struct.pack(">I", announced) + b"\x00" * sent
    sock.settimeout(5)
    while payload:
        n = min(len(payload), conn.max_outbound_frame_size, conn.local_flow_control_window(1))
        if n == 0:  # wait for the server's settings and window updates
            sock.sendall(conn.data_to_send())
            conn.receive_data(sock.recv(65536))
            continue
        conn.send_data(1, payload[:n])
        payload = payload[n:]
    sock.sendall(conn.data_to_send())
    return sock, conn


def grpc_status(sock, conn, wait=3.0):
    """The grpc-status the server answered on stream 1, None if none in `wait` s."""
    sock.settimeout(wait)
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        if not data:
            return None
        for event in conn.receive_data(data):
            for name, value in getattr(event, "headers", None) or []:
                if name == b"grpc-status":
                    return int(value)
        sock.sendall(conn.data_to_send())
    return None


def test_the_grpc_buffer_budget_is_shared_by_every_call(start_spoor):
    # the process may hold 1.1 MB of partial messages: three calls holding
    # 300 kB each fit, the fourth does not and is refused, not buffered
    spoor = start_spoor("--server.grpc-buffer-bytes=1100000")
    port = spoor.ports["otlp_grpc"]
    held = [partial_grpc_call(port, 1_000_000, 300_000) for _ in range(3)]
    time.sleep(0.5)
    assert [grpc_status(*c, wait=0.5) for c in held] == [None, None, None]
    refused = partial_grpc_call(port, 1_000_000, 300_000)
    assert grpc_status(*refused) == 8  # RESOURCE_EXHAUSTED
    assert spoor.metric("spoor_server_grpc_buffer_refusals_total", '{listener="OTLP gRPC"}') == 1
    assert spoor.metric("spoor_server_grpc_buffered_bytes") == 3 * 300_005
    for sock, _ in held + [refused]:
        sock.close()
    deadline = time.time() + 5
    while spoor.metric("spoor_server_grpc_buffered_bytes") != 0:
        assert time.time() < deadline, "closed calls kept their share of the budget"
        time.sleep(0.1)


def unfinished_requests(port, n):
    """Up to `n` connections that each send half an HTTP request's headers."""
    slow = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /api/services HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        except OSError:
            break
    return slow


def test_slowloris_on_one_port_leaves_the_others_serving(start_spoor):
    raise_own_file_limit(4096)
    spoor = start_spoor("--server.read-header-timeout=3s", nofile=1024)
    slow = unfinished_requests(spoor.ports["query_http"], 1100)
    # ingest answers at once while the query port is flooded
    started = time.time()
    emit(exporter_for("http", spoor), "during-slowloris")
    assert time.time() - started < 5
    refused = spoor.metric("spoor_server_connections_refused_total", '{listener="query HTTP"}')
    assert refused > 0, "connections over the listener's share were not refused"
    # the unfinished requests are closed after the header timeout
    time.sleep(4)
    assert spoor.get("/api/services").status_code == 200
    spoor.wait_for_traces("during-slowloris", 2)
    still_open = 0
    for s in slow:
        s.settimeout(0.5)
        try:
            answer = s.recv(1024)
            if answer and not answer.startswith(b"HTTP/1.1 408"):
                still_open += 1
        except socket.timeout:
            still_open += 1
        except ConnectionResetError:
            pass
        s.close()
    assert still_open == 0, f"{still_open} unfinished requests still open after the header timeout"


def test_sigterm_finishes_with_half_sent_requests(start_spoor):
    spoor = start_spoor("--shutdown.timeout=2s", "--server.read-header-timeout=60s",
                        "--server.body-idle-timeout=60s")
    headers = socket.create_connection(("127.0.0.1", spoor.ports["query_http"]))
    headers.sendall(b"GET /api/services HTTP/1.1\r\nHost: x\r\n")
    body = socket.create_connection(("127.0.0.1", spoor.ports["otlp_http"]))
    body.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                 b"Content-Length: 1000\r\n\r\n0123456789")
    time.sleep(0.5)
    started = time.time()
    code = spoor.stop()
    took = time.time() - started
    assert code == 0
    assert took < 8, f"shutdown took {took:.1f}s with half-sent requests open"
    headers.close()
    body.close()


def test_refusals_carry_the_codes_otlp_clients_act_on(spoor):
    import grpc
    from opentelemetry.sdk.trace.export import SpanExportResult
    channel = grpc.insecure_channel(spoor.otlp_grpc)
    export = channel.unary_unary(EXPORT)
    codes = {}
    for name, payload in [("garbage", b"\xff\xff\xff garbage"), ("oversize", b"\x0a" + b"\x00" * (5 << 20))]:
        try:
            export(payload, timeout=10)
        except grpc.RpcError as e:
            codes[name] = e.code()
    channel.close()
    assert codes == {"garbage": grpc.StatusCode.INVALID_ARGUMENT,
                     "oversize": grpc.StatusCode.INVALID_ARGUMENT}
    for reason in ("undecodable", "oversize"):
        labels = f'{{listener="OTLP gRPC",reason="{reason}"}}'
        assert spoor.metric("spoor_server_grpc_calls_refused_total", labels) == 1, reason
    # the real exporter gives up on an oversize batch at once instead of
    # retrying it until its timeout (OUT_OF_RANGE is retryable in OTLP)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    exporter = OTLPSpanExporter(endpoint=spoor.otlp_grpc, insecure=True, timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "oversize"}))
    spans = []

    class Capture(SimpleSpanProcessor):
        def on_end(self, span):
            spans.append(span)
    provider.add_span_processor(Capture(exporter))
    with provider.get_tracer("it").start_as_current_span("big", attributes={"blob": "x" * (5 << 20)}):
        pass
    started = time.time()
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert time.time() - started < 2, "the exporter retried an oversize batch"
    provider.shutdown()


def otlp_json_trace(trace_id, n, service="big", start=0):
    now = time.time_ns()
    spans = [{"traceId": trace_id, "spanId": f"{i + 1:016x}", "name": f"op-{i % 7}",
              "startTimeUnixNano": str(now - 1_000_000 + i), "endTimeUnixNano": str(now),
              "attributes": [{"key": "i", "value": {"intValue": str(i)}}]}
             for i in range(start, start + n)]
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]}


def otlp_protobuf(body):
    """An OTLP JSON request (hex ids) as the protobuf ExportTraceServiceRequest."""
    import base64
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    for rs in body["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return ParseDict(body, ExportTraceServiceRequest()).SerializeToString()


def test_spans_the_store_will_not_keep_are_reported_not_acknowledged(start_spoor):
    # 64 shards of 50 kB: one trace may hold about 50 kB of spans
    spoor = start_spoor("--memory.max-bytes=3200000")
    trace_id = "000000000000000000000000000b16b1"
    refused, sent = 0, 0
    for batch in range(10):
        resp = requests.post(spoor.otlp_http + "/v1/traces", json=otlp_json_trace(trace_id, 200, start=batch * 200),
                             headers={"content-type": "application/json"}, timeout=10)
        assert resp.status_code == 200
        sent += 200
        partial = resp.json().get("partialSuccess") or {}
        refused += int(partial.get("rejectedSpans", 0))
        if partial:
            assert "not stored" in partial["errorMessage"], partial
    assert 0 < refused < sent
    trace = spoor.get(f"/api/traces/{trace_id}").json()["data"][0]
    assert len(trace["spans"]) == sent - refused, "a refused span was stored, or a stored one reported"
    warnings = [w for s in trace["spans"] for w in (s.get("warnings") or [])]
    assert any(w.startswith(f"{refused} span(s) of this trace were not stored") for w in warnings), warnings
    assert spoor.metric("spoor_memory_dropped_spans_total") == refused
    # Zipkin and Jaeger HTTP answer non-2xx naming the refusal
    zipkin = [{"traceId": trace_id[16:], "id": f"{0xf000 + i:016x}", "name": "z", "timestamp": int(time.time() * 1e6),
               "duration": 5, "localEndpoint": {"serviceName": "big"}} for i in range(50)]
    resp = requests.post(spoor.zipkin + "/api/v2/spans", json=zipkin, timeout=10)
    assert resp.status_code == 400 and "not stored" in resp.text


def test_the_default_queue_takes_a_burst_of_large_batches(spoor):
    # four exporters flushing 512-span batches at the same moment, five times:
    # Jaeger's 2,000-span queue refused some of them while the store was idle
    from concurrent.futures import ThreadPoolExecutor
    bodies = [otlp_json_trace(f"{0xb0 + i:032x}", 512, service="burst") for i in range(20)]

    def post(body):
        return requests.post(spoor.otlp_http + "/v1/traces", json=body,
                             headers={"content-type": "application/json"}, timeout=30)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, bodies))
    assert [a.status_code for a in answers] == [200] * 20
    assert all(not a.json().get("partialSuccess") for a in answers)
    assert spoor.metric("spoor_collector_spans_rejected_total", '{transport="otlp_http",reason="queue_full"}') == 0
    assert spoor.metric("spoor_collector_queue_capacity_bytes") == 256 * 1024 * 1024


def test_shutdown_spills_the_queue_of_the_embedded_store(start_spoor, tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    # the redb engine writes about 15,000 spans a second with its tag index:
    # slow enough that most of the burst is still queued at the deadline
    args = ("--span-storage.type=embedded", "--embedded.engine=redb", f"--embedded.data-dir={tmp_path}",
            "--collector.ack-after-write=false", "--shutdown.timeout=1s")
    spoor = start_spoor(*args)
    traces = [f"{0x5ea1 + i:032x}" for i in range(40)]
    # encoded before the burst, as protobuf: the requests arrive faster than
    # the store writes them, whatever the speed of this machine
    bodies = [otlp_protobuf(otlp_json_trace(t, 2500, service="spill")) for t in traces]

    def post(body):
        resp = requests.post(spoor.otlp_http + "/v1/traces", data=body,
                             headers={"content-type": "application/x-protobuf"}, timeout=30)
        assert resp.status_code == 200
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, bodies))
    # 100,000 acknowledged spans, most still queued
    assert spoor.stop() == 0, "acknowledged spans were lost at shutdown"
    assert list((tmp_path / "spill").glob("collector-spill-*.pb")), "nothing was spilled"
    again = start_spoor(*args)
    counts = [len(again.get(f"/api/traces/{t}").json()["data"][0]["spans"]) for t in traces]
    assert counts == [2500] * 40
    assert not list((tmp_path / "spill").glob("collector-spill-*.pb")), "spill file not removed once written"


def test_a_search_over_large_traces_is_bounded_and_streamed(start_spoor):
    spoor = start_spoor("--query.max-response-bytes=8000000")
    blob = "x" * 1000
    for t in range(24):
        body = otlp_json_trace(f"{0x1a4e + t:032x}", 1000, service="large")
        for s in body["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            s["attributes"].append({"key": "blob", "value": {"stringValue": blob}})
        resp = requests.post(spoor.otlp_http + "/v1/traces", json=body,
                             headers={"content-type": "application/json"}, timeout=30)
        assert resp.status_code == 200 and not resp.json().get("partialSuccess")
    before = spoor.rss_mb()
    resp = spoor.get("/api/traces", service="large", lookback="1h", limit="100")
    after = spoor.rss_mb()
    assert resp.status_code == 200
    body = resp.json()
    # about 1.3 MB of JSON a trace: 8 MB hold a few, the rest are left out and counted
    assert 0 < len(body["data"]) < 24
    assert len(resp.content) <= 8_000_000 + 2_000_000
    assert body["errors"][0]["code"] == 413
    assert body["errors"][0]["msg"].startswith(f"response truncated: {24 - len(body['data'])} of 24 traces")
    assert after - before < 60, f"RSS grew from {before:.0f} MB to {after:.0f} MB for one search"


def test_invalid_times_are_kept_as_far_as_they_can_be_and_said(spoor):
    now = time.time_ns()
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "skewed"}}]},
        "scopeSpans": [{"spans": [{"traceId": "0000000000000000000000000005ce1e", "spanId": "0000000000000001",
                                   "name": "backwards", "startTimeUnixNano": str(now),
                                   "endTimeUnixNano": str(now - 2_000_000)}]}]}]}
    resp = requests.post(spoor.otlp_http + "/v1/traces", json=body,
                         headers={"content-type": "application/json"}, timeout=10)
    assert resp.status_code == 200
    span = spoor.get("/api/traces/0000000000000000000000000005ce1e").json()["data"][0]["spans"][0]
    assert span["duration"] == 0
    assert span["startTime"] == now // 1000, "the start time was not kept"
    assert any("2000000ns before the start time" in w for w in span["warnings"]), span["warnings"]


def test_scope_attributes_and_child_of_links_are_kept(spoor):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Link
    provider = TracerProvider(resource=Resource.create({"service.name": "scoped"}))
    provider.add_span_processor(BatchSpanProcessor(exporter_for("grpc", spoor)))
    tracer = provider.get_tracer("spoor.it.scoped", "2.0", attributes={"team": "checkout"})
    with tracer.start_as_current_span("first") as first:
        pass
    with tracer.start_as_current_span("second", links=[
            Link(first.get_span_context(), {"opentracing.ref_type": "child_of"})]):
        pass
    provider.shutdown()
    traces = spoor.wait_for_traces("scoped", 2, tags='{"team":"checkout"}')
    spans = {s["operationName"]: s for t in traces for s in t["spans"]}
    assert {"key": "team", "type": "string", "value": "checkout"} in spans["first"]["tags"]
    refs = spans["second"]["references"]
    assert [r["refType"] for r in refs] == ["CHILD_OF"], refs
    assert refs[0]["spanID"] == f"{first.get_span_context().span_id:016x}"


@pytest.mark.parametrize("store", ["memory", "embedded"])
def test_link_attributes_are_kept_and_searchable(start_spoor, tmp_path, store):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Link
    args = [f"--span-storage.type={store}"]
    if store == "embedded":
        args.append(f"--embedded.data-dir={tmp_path}")
    spoor = start_spoor(*args)
    provider = TracerProvider(resource=Resource.create({"service.name": "linked"}))
    provider.add_span_processor(BatchSpanProcessor(exporter_for("grpc", spoor)))
    tracer = provider.get_tracer("spoor.it.linked")
    with tracer.start_as_current_span("producer") as producer:
        pass
    with tracer.start_as_current_span("consumer", links=[
            Link(producer.get_span_context(), {"messaging.batch.id": "batch-7", "messaging.batch.size": 12})]):
        pass
    provider.shutdown()
    # found by a link attribute, as Jaeger finds a span by any of its tags
    traces = spoor.wait_for_traces("linked", 1, tags='{"messaging.batch.id":"batch-7"}')
    (span,) = [s for t in traces for s in t["spans"]]
    assert span["operationName"] == "consumer"
    ctx = producer.get_span_context()
    assert span["references"] == [{"refType": "FOLLOWS_FROM", "traceID": f"{ctx.trace_id:032x}",
                                   "spanID": f"{ctx.span_id:016x}"}]
    (log,) = [lg for lg in span["logs"] if {"key": "event", "type": "string", "value": "link"} in lg["fields"]]
    fields = {f["key"]: f["value"] for f in log["fields"]}
    assert fields == {"event": "link", "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                      "messaging.batch.id": "batch-7", "messaging.batch.size": 12}
    assert log["timestamp"] == span["startTime"]
