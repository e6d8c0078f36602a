"""The real OpenTelemetry Zipkin exporter (v2 JSON) reports to 9411; a Zipkin
v1 JSON client's shared client/server span is split as Zipkin does."""
import json

import requests
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


def tags(span):
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def test_otel_zipkin_exporter_spans_come_back(spoor):
    provider = TracerProvider(resource=Resource.create({"service.name": "zipkin-shop"}))
    provider.add_span_processor(SimpleSpanProcessor(ZipkinExporter(endpoint=spoor.zipkin + "/api/v2/spans")))
    tracer = provider.get_tracer("zipkin.it")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER,
                                      attributes={"http.method": "POST", "http.status_code": 201}) as root:
        root.add_event("cache-miss", {"key": "cart:7"})
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()

    [trace] = spoor.wait_for_traces("zipkin-shop", 2)
    assert trace["traceID"] == format(root.get_span_context().trace_id, "032x")
    spans = {s["operationName"]: s for s in trace["spans"]}
    root_json, child_json = spans["checkout"], spans["charge"]
    assert root_json["spanID"] == format(root.get_span_context().span_id, "016x")
    assert tags(root_json)["http.method"] == ("string", "POST")
    assert tags(root_json)["http.status_code"] == ("string", "201")
    assert tags(root_json)["span.kind"] == ("string", "server")
    [log] = root_json["logs"]
    assert log["fields"] == [{"key": "event", "type": "string", "value": json.dumps({"cache-miss": {"key": "cart:7"}})}]
    assert tags(child_json)["span.kind"] == ("string", "client")
    assert tags(child_json)["error"] == ("bool", True)
    assert tags(child_json)["error.message"] == ("string", "card declined")
    assert child_json["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": root_json["spanID"]}]
    assert trace["processes"][root_json["processID"]]["serviceName"] == "zipkin-shop"


def test_zipkin_v1_shared_span_is_split_into_client_and_server(spoor):
    import time
    now = int(time.time() * 1_000_000)
    web = {"serviceName": "v1-web", "ipv4": "10.0.0.1"}
    shop = {"serviceName": "v1-shop", "ipv4": "10.0.0.2"}
    body = [{
        "traceId": "000000000000abcd", "id": "0000000000000002", "name": "get /cart",
        "annotations": [
            {"timestamp": now, "value": "cs", "endpoint": web},
            {"timestamp": now + 100, "value": "sr", "endpoint": shop},
            {"timestamp": now + 900, "value": "ss", "endpoint": shop},
            {"timestamp": now + 1000, "value": "cr", "endpoint": web},
        ],
        "binaryAnnotations": [{"key": "http.path", "value": "/cart", "endpoint": shop}],
    }]
    resp = requests.post(spoor.zipkin + "/api/v1/spans", json=body)
    assert resp.status_code == 202, resp.text
    bad = requests.post(spoor.zipkin + "/api/v1/spans", data=b"[{", headers={"content-type": "application/json"})
    assert bad.status_code == 400

    [trace] = spoor.wait_for_traces("v1-shop", 2)
    by_service = {trace["processes"][s["processID"]]["serviceName"]: s for s in trace["spans"]}
    client, server = by_service["v1-web"], by_service["v1-shop"]
    assert client["spanID"] == server["spanID"] == "0000000000000002"
    assert client["duration"] == 1000 and server["duration"] == 800
    assert tags(client)["span.kind"] == ("string", "client")
    assert tags(server)["span.kind"] == ("string", "server")
    assert tags(server)["http.path"] == ("string", "/cart")
