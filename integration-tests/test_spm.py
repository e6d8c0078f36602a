"""Service performance monitoring without a second system: the all-in-one's
collector computes RED metrics from the OpenTelemetry SDK's spans, and the
query port answers Jaeger's /api/metrics/* (what the Jaeger UI's Monitor tab
calls) from them; the admin port exports them as the OTel Collector's
spanmetrics connector names them."""
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import requests


def send(spoor, service, n):
    """n server spans of 1..n ms; every fifth an error. Half are GET /a."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=spoor.otlp_grpc, insecure=True)))
    tracer = provider.get_tracer("spm")
    start = time.time_ns()
    for i in range(1, n + 1):
        span = tracer.start_span("GET /a" if i % 2 else "GET /b", kind=SpanKind.SERVER, start_time=start)
        if i % 5 == 0:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + i * 1_000_000)
    client = tracer.start_span("call db", kind=SpanKind.CLIENT, start_time=start)
    client.end(end_time=start + 3_000_000)
    provider.shutdown()


def values(family):
    return {tuple(sorted((l["name"], l["value"]) for l in m["labels"])): [p["gaugeValue"]["doubleValue"] for p in m["metricPoints"]]
            for m in family["metrics"]}


def test_red_metrics_of_sdk_traffic(spoor):
    service = "spm-shop"
    send(spoor, service, 200)
    spoor.wait_for_traces(service, 1, limit=1)
    deadline = time.time() + 15
    while True:
        calls = spoor.get("/api/metrics/calls", service=service, ratePer=600000, step=60000, lookback=120000).json()
        points = values(calls).get((("service_name", service),), [])
        if points and points[-1] * 600 >= 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert calls["name"] == "service_call_rate" and calls["type"] == "GAUGE"
    # 200 server calls in the last ten minutes, per second; the client span is another kind
    assert abs(points[-1] - 200 / 600) < 1e-9, points

    errors = spoor.get("/api/metrics/errors", service=service).json()
    assert values(errors)[(("service_name", service),)][-1] == 0.2

    # durations 1..200 ms: the quantile is within the histogram's 12.5 %
    for q, exact in [(0.5, 100.0), (0.95, 190.0)]:
        latencies = spoor.get("/api/metrics/latencies", service=service, quantile=q).json()
        assert latencies["help"] == f"{q:.2f}th quantile latency, grouped by service"
        ms = values(latencies)[(("service_name", service),)][-1]
        assert abs(ms - exact) <= exact * 0.125, (q, ms)

    by_op = spoor.get("/api/metrics/calls", service=service, groupByOperation="true").json()
    assert by_op["name"] == "service_operation_call_rate"
    ops = {dict(k)["operation"]: v[-1] for k, v in values(by_op).items()}
    assert ops == {"GET /a": 100 / 600, "GET /b": 100 / 600}
    client = spoor.get("/api/metrics/calls", service=service, spanKind="client").json()
    assert abs(values(client)[(("service_name", service),)][-1] - 1 / 600) < 1e-9

    assert spoor.get("/api/metrics/minstep").json()["data"] == 60000
    r = spoor.get("/api/metrics/latencies", service=service)
    assert r.status_code == 400  # Jaeger's: quantile is required

    text = requests.get(spoor.admin + "/metrics", timeout=5).text
    error_line = next(line for line in text.splitlines() if line.startswith("traces_span_metrics_calls_total{")
                      and f'service_name="{service}"' in line and 'span_name="GET /b"' in line
                      and "STATUS_CODE_ERROR" in line)
    # OpenMetrics: the count, then the latest error trace as its exemplar
    count, exemplar = error_line.split(" # ")
    assert count.rsplit(" ", 1)[1] == "20"
    assert exemplar.startswith('{trace_id="') and len(exemplar.split('"')[1]) == 32, exemplar
    assert "traces_span_metrics_duration_milliseconds_bucket{" in text


def test_red_metrics_outlive_a_restart_on_the_embedded_store(start_spoor, tmp_path):
    data = tmp_path / "spoor-data"
    args = ("--span-storage.type=embedded", f"--embedded.data-dir={data}")
    first = start_spoor(*args)
    send(first, "spm-durable", 50)
    first.wait_for_traces("spm-durable", 1, limit=1)
    deadline = time.time() + 15
    while values(first.get("/api/metrics/calls", service="spm-durable").json()) == {}:
        assert time.time() < deadline
        time.sleep(0.2)
    assert first.stop() == 0
    assert (data / "spm.json").exists()

    second = start_spoor(*args)
    [rate] = values(second.get("/api/metrics/calls", service="spm-durable").json()).values()
    assert abs(rate[-1] - 50 / 600) < 1e-9, rate
    [errors] = values(second.get("/api/metrics/errors", service="spm-durable").json()).values()
    assert errors[-1] == 0.2
