"""Streaming: collector → Kafka (a real Kafka-protocol broker, tansu) →
ingester → storage, with the OpenTelemetry SDK as the client."""
import signal
import time

import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from conftest import Service
from test_otlp import emit, exporter_for


def test_all_in_one_streams_through_kafka(kafka, start_spoor):
    spoor = start_spoor("--all-in-one.streaming", f"--kafka.producer.brokers={kafka}",
                        f"--kafka.consumer.brokers={kafka}", "--ingester.batch-wait=20ms")
    root, child = emit(exporter_for("grpc", spoor), "streamed-shop")
    [trace] = spoor.wait_for_traces("streamed-shop", 2)
    assert trace["traceID"] == format(root.trace_id, "032x")
    by_name = {s["operationName"]: s for s in trace["spans"]}
    assert by_name["charge"]["references"][0]["spanID"] == format(root.span_id, "016x")
    text = requests.get(spoor.admin + "/metrics", timeout=5).text
    assert "spoor_kafka_spans_delivered_total 2" in text
    assert "spoor_ingester_spans_written_total 2" in text


def collector(kafka):
    return Service("spoor-collector", ("grpc", "http", "otlp_grpc", "otlp_http"), lambda p: [
        f"--collector.grpc-server.host-port=127.0.0.1:{p['grpc']}",
        f"--collector.http-server.host-port=127.0.0.1:{p['http']}",
        f"--collector.otlp.grpc.host-port=127.0.0.1:{p['otlp_grpc']}",
        f"--collector.otlp.http.host-port=127.0.0.1:{p['otlp_http']}",
        "--span-storage.type=kafka", f"--kafka.producer.brokers={kafka}",
    ])


def ingester(kafka, data_dir):
    # one message per write: slow enough to be killed halfway
    return Service("spoor-ingester", (), lambda p: [
        "--span-storage.type=embedded", f"--embedded.data-dir={data_dir}",
        f"--kafka.consumer.brokers={kafka}", "--ingester.batch-size=1", "--ingester.parallelism=1",
        "--ingester.batch-wait=1ms",
        # a killed member holds its partitions until its session times out
        "--kafka.consumer.config=session.timeout.ms=6000;heartbeat.interval.ms=500",
    ])


def send_traces(otlp_grpc, service, traces):
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=otlp_grpc, insecure=True), max_export_batch_size=50))
    tracer = provider.get_tracer("spoor.it")
    ids = []
    for i in range(traces):
        with tracer.start_as_current_span("order", attributes={"order.id": i}) as root:
            with tracer.start_as_current_span("reserve"):
                pass
        ids.append(format(root.get_span_context().trace_id, "032x"))
    provider.shutdown()
    return ids


def test_a_killed_ingester_loses_nothing(kafka, tmp_path):
    data = tmp_path / "store"
    c = collector(kafka)
    try:
        trace_ids = send_traces(f"127.0.0.1:{c.ports['otlp_grpc']}", "kafka-orders", 150)
        messages = 2 * len(trace_ids)

        first = ingester(kafka, data)
        deadline = time.time() + 30
        while sum(first.metrics("spoor_ingester_spans_written_total").values()) < 20:
            assert time.time() < deadline, "the first ingester wrote nothing"
            time.sleep(0.01)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)

        second = ingester(kafka, data)
        deadline = time.time() + 60
        while sum(second.metrics("spoor_ingester_stored_offset").values()) < messages:
            assert time.time() < deadline, second.metrics("spoor_ingester_stored_offset")
            time.sleep(0.1)
        assert second.stop() == 0
    finally:
        assert c.stop() == 0

    query = Service("spoor-query", ("http", "grpc"), lambda p: [
        f"--query.http-server.host-port=127.0.0.1:{p['http']}",
        f"--query.grpc-server.host-port=127.0.0.1:{p['grpc']}",
        "--span-storage.type=embedded", f"--embedded.data-dir={data}",
    ])
    try:
        base = f"http://127.0.0.1:{query.ports['http']}"
        for trace_id in trace_ids:
            body = requests.get(f"{base}/api/traces/{trace_id}", timeout=10).json()
            spans = body["data"][0]["spans"]
            assert sorted(s["operationName"] for s in spans) == ["order", "reserve"], trace_id
    finally:
        assert query.stop() == 0
