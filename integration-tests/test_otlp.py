"""The real OpenTelemetry Python SDK reports to spoor-all-in-one over OTLP
gRPC and HTTP; the spans come back through Jaeger's query API intact."""
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def exporter_for(kind, spoor):
    if kind == "grpc":
        return GrpcExporter(endpoint=spoor.otlp_grpc, insecure=True)
    return HttpExporter(endpoint=spoor.otlp_http + "/v1/traces")


def emit(exporter, service):
    provider = TracerProvider(resource=Resource.create({
        "service.name": service,
        "deployment.environment": "it",
    }))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("spoor.it", "1.2.3")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER, attributes={
        "http.method": "POST", "http.status_code": 201, "cart.value": 12.5, "cart.gift": True,
    }) as root:
        root.add_event("cache-miss", {"cache.key": "cart:7", "attempt": 2})
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT,
                                          links=[Link(root.get_span_context())]) as child:
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return root.get_span_context(), child.get_span_context()


def tags(span_or_process):
    return {t["key"]: (t["type"], t["value"]) for t in span_or_process["tags"]}


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_sdk_spans_come_back_with_tags_events_and_parents(spoor, kind):
    service = f"py-{kind}-shop"
    root_ctx, child_ctx = emit(exporter_for(kind, spoor), service)
    [trace_json] = spoor.wait_for_traces(service, 2)

    assert trace_json["traceID"] == format(root_ctx.trace_id, "032x")
    spans = {s["operationName"]: s for s in trace_json["spans"]}
    root, child = spans["checkout"], spans["charge"]
    assert root["spanID"] == format(root_ctx.span_id, "016x")
    assert child["spanID"] == format(child_ctx.span_id, "016x")

    root_tags = tags(root)
    assert root_tags["http.method"] == ("string", "POST")
    assert root_tags["http.status_code"] == ("int64", 201)
    assert root_tags["cart.value"] == ("float64", 12.5)
    assert root_tags["cart.gift"] == ("bool", True)
    assert root_tags["span.kind"] == ("string", "server")
    assert root_tags["otel.scope.name"] == ("string", "spoor.it")
    assert root_tags["otel.scope.version"] == ("string", "1.2.3")

    [log] = root["logs"]
    fields = {f["key"]: f["value"] for f in log["fields"]}
    assert fields == {"event": "cache-miss", "cache.key": "cart:7", "attempt": 2}
    assert root["startTime"] <= log["timestamp"] <= root["startTime"] + root["duration"]

    child_tags = tags(child)
    assert child_tags["span.kind"] == ("string", "client")
    assert child_tags["error"] == ("bool", True)
    assert child_tags["otel.status_code"] == ("string", "ERROR")
    assert child_tags["otel.status_description"] == ("string", "card declined")
    assert child["references"][0] == {
        "refType": "CHILD_OF", "traceID": trace_json["traceID"], "spanID": root["spanID"]}
    assert child["references"][1]["refType"] == "FOLLOWS_FROM"

    process = trace_json["processes"][root["processID"]]
    assert process["serviceName"] == service
    assert tags(process)["deployment.environment"] == ("string", "it")
    assert tags(process)["telemetry.sdk.language"] == ("string", "python")
    assert child["processID"] == root["processID"]

    # the same trace by id, by tag search, and the service's operations by kind
    by_id = spoor.get(f"/api/traces/{trace_json['traceID']}").json()["data"][0]
    assert len(by_id["spans"]) == 2
    found = spoor.get("/api/traces", service=service, tags='{"http.status_code":"201"}').json()
    assert [t["traceID"] for t in found["data"]] == [trace_json["traceID"]]
    none = spoor.get("/api/traces", service=service, tag="http.method:GET").json()
    assert none["data"] == []
    ops = spoor.get("/api/operations", service=service, spanKind="client").json()["data"]
    assert ops == [{"name": "charge", "spanKind": "client"}]

    metrics = requests_get_text(spoor.admin + "/metrics")
    transport = "otlp_grpc" if kind == "grpc" else "otlp_http"
    assert f'spoor_collector_spans_received_total{{transport="{transport}"}} 2' in metrics


def requests_get_text(url):
    import requests
    return requests.get(url, timeout=5).text
