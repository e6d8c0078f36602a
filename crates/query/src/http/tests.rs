use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use serde_json::{Value as Json, json};
use spoor_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use spoor_storage::SpanWriter;
use spoor_storage_memory::{MemoryConfig, MemoryStore};
use tower::ServiceExt;

use super::*;

fn span(trace: u128, id: u64, service: &Arc<Process>, op: &str, parent: Option<u64>) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: op.into(),
        references: parent
            .map(|p| SpanRef {
                trace_id: TraceId(trace),
                span_id: SpanId(p),
                ref_type: RefType::ChildOf,
            })
            .into_iter()
            .collect(),
        flags: 1,
        start_time: SystemTime::now() - Duration::from_secs(60),
        duration: Duration::from_micros(1500),
        tags: vec![
            KeyValue::string("span.kind", "server"),
            KeyValue::new("http.status_code", Value::Int64(500)),
        ],
        logs: vec![],
        process: Arc::clone(service),
        warnings: vec![],
    }
}

async fn app(base: &str) -> (axum::Router, Arc<QueryMetrics>) {
    let limits = ResponseLimits {
        spans: 1_000,
        bytes: 1 << 20,
    };
    app_with_limits(base, limits).await
}

async fn app_with_limits(base: &str, limits: ResponseLimits) -> (axum::Router, Arc<QueryMetrics>) {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }));
    let web = Arc::new(Process {
        service_name: "web".into(),
        tags: vec![KeyValue::string("host", "a")],
    });
    let db = Arc::new(Process {
        service_name: "db".into(),
        tags: vec![],
    });
    let big = 0xabcdef0123456789_0000000000000001u128;
    store
        .write_spans(vec![
            span(1, 1, &web, "GET /", None),
            span(1, 2, &db, "SELECT", Some(1)),
            span(big, 1, &web, "POST /", None),
        ])
        .await
        .unwrap();
    let metrics = Arc::new(QueryMetrics::new(&mut Registry::default()));
    (
        crate::app(
            ApiState {
                reader: store.clone(),
                dependencies: store,
                archive: None,
                red: None,
                ui_config: Arc::new(json!({"linkPatterns": []})),
                metrics: Arc::clone(&metrics),
                limits,
            },
            base,
            Arc::new(crate::ui::Ui::new(base)),
        ),
        metrics,
    )
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Json) {
    let uri = request.uri().clone();
    let resp = app.clone().oneshot(request).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{uri}: not json")),
    )
}

/// Spans in an api_v3 answer's `result.resourceSpans`.
fn otlp_spans(body: &Json) -> usize {
    body["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| rs["scopeSpans"][0]["spans"].as_array().unwrap().len())
        .sum()
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Json) {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn services_and_operations() {
    let (app, _) = app("/").await;
    let (status, body) = get(&app, "/api/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": ["db", "web"], "total": 2, "limit": 0, "offset": 0, "errors": null})
    );
    let (_, body) = get(&app, "/api/services/web/operations").await;
    assert_eq!(body["data"], json!(["GET /", "POST /"]));
    let (_, body) = get(&app, "/api/operations?service=db&spanKind=server").await;
    assert_eq!(
        body["data"],
        json!([{"name": "SELECT", "spanKind": "server"}])
    );
    let (_, body) = get(&app, "/api/operations?service=db&spanKind=client").await;
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn search_and_get_by_id_return_ui_json() {
    let (app, metrics) = app("/").await;
    let (status, body) = get(
        &app,
        "/api/traces?service=db&tags=%7B%22http.status_code%22%3A%22500%22%7D&minDuration=1ms",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], "0000000000000001");
    assert_eq!(trace["spans"].as_array().unwrap().len(), 2);
    let child = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spanID"] == "0000000000000002")
        .unwrap();
    assert_eq!(
        child["references"],
        json!([{"refType": "CHILD_OF", "traceID": "0000000000000001", "spanID": "0000000000000001"}])
    );
    assert_eq!(child["duration"], 1500);
    let pid = child["processID"].as_str().unwrap();
    assert_eq!(trace["processes"][pid]["serviceName"], "db");

    let (_, none) = get(&app, "/api/traces?service=db&maxDuration=1ms").await;
    assert_eq!(none["data"], json!([]));

    let (status, body) = get(&app, "/api/traces/abcdef01234567890000000000000001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"][0]["traceID"],
        "abcdef01234567890000000000000001"
    );
    assert_eq!(body["data"][0]["spans"][0]["operationName"], "POST /");

    let (_, body) = get(&app, "/api/traces?traceID=1&traceID=2").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["errors"],
        json!([{"code": 404, "msg": "trace not found", "traceID": "0000000000000002"}])
    );

    let label = crate::metrics::RequestLabel {
        endpoint: "/api/traces/{trace_id}".into(),
        status: 200,
    };
    assert_eq!(metrics.requests.get_or_create(&label).get(), 1);
}

#[tokio::test]
async fn errors_use_the_envelope() {
    let (app, _) = app("/").await;
    let (status, body) = get(&app, "/api/traces/00000000000000ff").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    for (uri, needle) in [
        ("/api/traces/not-hex", "'traceID'"),
        ("/api/traces?service=db&limit=many", "'limit'"),
        ("/api/traces?operation=x", "'service'"),
        ("/api/traces?service=db&minDuration=10", "'minDuration'"),
        ("/api/operations?spanKind=server", "'service'"),
        ("/api/dependencies?lookback=-5", "'lookback'"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{uri}: {msg}");
        assert_eq!(body["errors"][0]["code"], 400);
    }
    let (status, _) = get(&app, "/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dependencies_and_base_path() {
    let (app, _) = app("/jaeger").await;
    let (status, body) = get(&app, "/jaeger/api/dependencies").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!([{"parent": "web", "child": "db", "callCount": 1}])
    );
    let (status, _) = get(&app, "/api/services").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_answer_over_its_bound_leaves_traces_out_and_says_so() {
    // two traces of 2 and 1 spans; the answer may hold 2 spans
    let limits = ResponseLimits {
        spans: 2,
        bytes: 1 << 20,
    };
    let (app, _) = app_with_limits("/", limits).await;
    let (status, body) = get(&app, "/api/traces?service=web&lookback=1h").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["errors"][0]["code"], 413);
    let msg = body["errors"][0]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("response truncated: 1 of 2 traces left out"),
        "{msg}"
    );
    // a trace asked for by id is whole even over the bound
    let (status, body) = get(&app, "/api/traces/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 2);
    // within the bound, no errors at all, as Jaeger answers
    let (_, body) = get(&app, "/api/traces?service=db&lookback=1h").await;
    assert_eq!(body["errors"], Json::Null);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

async fn post(app: &axum::Router, uri: &str, body: impl Into<Body>) -> (StatusCode, Json) {
    send(app, Request::post(uri).body(body.into()).unwrap()).await
}

fn otlp_file(trace_hex: &str, service: &str) -> Json {
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "host.name", "value": {"stringValue": "h1"}}]},
        "scopeSpans": [{
            "scope": {"name": "checkout-lib", "version": "1.2"},
            "spans": [{
                "traceId": trace_hex, "spanId": "0102030405060708",
                "name": "charge", "kind": 3,
                "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000250000000",
                "attributes": [{"key": "amount", "value": {"intValue": "42"}}],
                "events": [{"timeUnixNano": "1700000000100000000", "name": "retry"}],
                "links": [{"traceId": "0000000000000000000000000000abcd", "spanId": "00000000000000ef",
                           "attributes": [{"key": "batch", "value": {"stringValue": "b7"}}]}],
                "status": {"code": 2, "message": "card declined"}
            }]
        }]
    }]})
}

#[tokio::test]
async fn transform_turns_otlp_json_into_ui_traces_with_the_collectors_mapping() {
    let (app, _) = app("/").await;
    let file = otlp_file("5b8efff798038103d269b633813fc60c", "checkout");
    let (status, body) = post(&app, "/api/transform", file.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], "5b8efff798038103d269b633813fc60c");
    let span = &trace["spans"][0];
    assert_eq!(span["operationName"], "charge");
    assert_eq!(span["duration"], 250_000);
    let tags: Vec<(String, Json)> = span["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap().to_string(), t["value"].clone()))
        .collect();
    for (key, value) in [
        ("amount", json!(42)),
        ("span.kind", json!("client")),
        ("otel.scope.name", json!("checkout-lib")),
        ("otel.status_code", json!("ERROR")),
        ("otel.status_description", json!("card declined")),
        ("error", json!(true)),
    ] {
        assert!(
            tags.contains(&(key.into(), value.clone())),
            "{key}={value} in {tags:?}"
        );
    }
    // the link, and its attributes as a log, as the collector keeps them
    assert_eq!(span["references"][0]["spanID"], "00000000000000ef");
    let logs = span["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| {
        l["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["key"] == "batch")
    }));
    assert_eq!(trace["processes"]["p1"]["serviceName"], "checkout");
}

#[tokio::test]
async fn transform_takes_json_lines_and_refuses_what_is_not_otlp() {
    let (app, _) = app("/").await;
    let lines = format!(
        "{}\n{}\n",
        otlp_file("00000000000000000000000000000001", "a"),
        otlp_file("00000000000000000000000000000002", "b")
    );
    let (status, body) = post(&app, "/api/transform", lines).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    let (status, body) = post(&app, "/api/transform", "{\"resourceSpans\": 7}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("not OTLP JSON")
    );
    // a span without a valid id is reported; the others are kept
    let mut file = otlp_file("00000000000000000000000000000003", "c");
    let bad = json!({"traceId": "00ff", "spanId": "0102030405060708", "name": "x"});
    file["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .push(bad);
    let (status, body) = post(&app, "/api/transform", file.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
}

const V3_WINDOW: &str =
    "query.startTimeMin=2000-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z";

#[tokio::test]
async fn api_v3_services_and_operations() {
    let (app, _) = app("/").await;
    let (status, body) = get(&app, "/api/v3/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"services": ["db", "web"]}));
    let (_, body) = get(&app, "/api/v3/operations?service=db&spanKind=server").await;
    assert_eq!(
        body,
        json!({"operations": [{"name": "SELECT", "spanKind": "server"}]})
    );
    // the snake_case name Jaeger took before v2.15
    let (_, body) = get(&app, "/api/v3/operations?service=db&span_kind=client").await;
    assert_eq!(body, json!({"operations": []}));
    let (status, body) = get(&app, "/api/v3/operations?service=db&spanKind=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["httpCode"], 400);
}

#[tokio::test]
async fn api_v3_trace_by_id_is_otlp_json() {
    let (app, _) = app("/").await;
    let (status, body) = get(&app, "/api/v3/traces/00000000000000000000000000000001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resources = body["result"]["resourceSpans"].as_array().unwrap();
    let mut seen = Vec::new();
    for rs in resources {
        let service = rs["resource"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "service.name")
            .unwrap()["value"]["stringValue"]
            .clone();
        for span in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
            assert_eq!(span["traceId"], "00000000000000000000000000000001");
            seen.push((
                service.clone(),
                span["name"].clone(),
                span["parentSpanId"].clone(),
            ));
        }
    }
    seen.sort_by_key(|s| s.1.to_string());
    assert_eq!(
        seen,
        vec![
            (json!("web"), json!("GET /"), json!("")),
            (json!("db"), json!("SELECT"), json!("0000000000000001")),
        ]
    );
    // OTLP JSON: times are decimal strings, the kind a number
    let span = &resources[0]["scopeSpans"][0]["spans"][0];
    assert!(
        span["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{span}"
    );
    assert_eq!(span["kind"], 2);
    // the same trace by base64 of its bytes, as Jaeger accepts
    let (status, _) = get(&app, "/api/v3/traces/AAAAAAAAAAAAAAAAAAAAAQ").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&app, "/api/v3/traces/00000000000000000000000000000042").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": {"httpCode": 404, "message": "No traces found"}})
    );
    let (status, body) = get(&app, "/api/v3/traces/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed parameter trace_id"),
        "{body}"
    );
}

#[tokio::test]
async fn api_v3_search_and_summaries() {
    let (app, _) = app("/").await;
    let (status, body) = get(
        &app,
        &format!("/api/v3/traces?query.serviceName=db&{V3_WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spans = otlp_spans(&body);
    assert_eq!(spans, 2, "the whole trace, not only the matching span");
    let (status, body) = get(
        &app,
        &format!("/api/v3/trace-summaries?query.serviceName=db&{V3_WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let summaries = body["summaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(s["traceId"], "00000000000000000000000000000001");
    assert_eq!(s["rootServiceName"], "web");
    assert_eq!(s["rootOperationName"], "GET /");
    assert_eq!(
        (
            s["spanCount"].clone(),
            s["errorSpanCount"].clone(),
            s["orphanSpanCount"].clone()
        ),
        (json!(2), json!(0), json!(0))
    );
    assert_eq!(
        s["services"],
        json!([
            {"name": "db", "spanCount": 1, "errorSpanCount": 0},
            {"name": "web", "spanCount": 1, "errorSpanCount": 0}
        ])
    );
    let start: u64 = s["minStartTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = s["maxEndTimeUnixNano"].as_str().unwrap().parse().unwrap();
    // from the first start to the last end: each span lasts 1.5 ms, and
    // the test's spans start a moment apart
    assert!((1_500_000..1_000_000_000).contains(&(end - start)), "{s}");
    // searchDepth bounds the answer; nothing found is Jaeger's 404 for traces
    let (_, body) = get(
        &app,
        &format!("/api/v3/trace-summaries?query.serviceName=web&query.searchDepth=1&{V3_WINDOW}"),
    )
    .await;
    assert_eq!(body["summaries"].as_array().unwrap().len(), 1);
    let (status, body) = get(
        &app,
        &format!("/api/v3/traces?query.serviceName=nobody&{V3_WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "No traces found");
    let (status, body) = get(&app, "/api/v3/trace-summaries?query.serviceName=db").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": {"httpCode": 400, "message": "query.startTimeMin and query.startTimeMax are required"}})
    );
}

#[tokio::test]
async fn an_archived_trace_outlives_the_primary_store() {
    // a primary that keeps one trace, so the next write evicts the first
    let primary = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 1,
        max_bytes: 1 << 30,
    }));
    let archive_store = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }));
    let archive = spoor_storage::Archive {
        writer: archive_store.clone(),
        reader: archive_store.clone(),
    };
    let web = Arc::new(Process {
        service_name: "web".into(),
        tags: vec![],
    });
    let state = |archive: Option<spoor_storage::Archive>| ApiState {
        reader: match &archive {
            Some(a) => Arc::new(spoor_storage::WithArchive {
                primary: primary.clone(),
                archive: Arc::clone(&a.reader),
            }),
            None => primary.clone(),
        },
        dependencies: primary.clone(),
        archive,
        red: None,
        ui_config: Arc::new(json!({})),
        metrics: Arc::new(QueryMetrics::new(&mut Registry::default())),
        limits: ResponseLimits {
            spans: 1_000,
            bytes: 1 << 20,
        },
    };
    let app = crate::app(state(Some(archive)), "/", Arc::new(crate::ui::Ui::new("/")));
    primary
        .write_spans(vec![
            span(7, 1, &web, "GET /", None),
            span(7, 2, &web, "SELECT", Some(1)),
        ])
        .await
        .unwrap();
    let post = |uri: &str| Request::post(uri).body(Body::empty()).unwrap();
    let (status, body) = send(&app, post("/api/archive/0000000000000007")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": null})
    );
    let (status, _) = send(&app, post("/api/archive/00000000000000ff")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    primary
        .write_spans(vec![span(8, 1, &web, "GET /", None)])
        .await
        .unwrap();
    assert!(
        primary.get_trace(TraceId(7)).await.unwrap().is_none(),
        "evicted"
    );
    let (status, body) = get(&app, "/api/traces/0000000000000007").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 2);
    let (status, _) = get(&app, "/api/v3/traces/00000000000000000000000000000007").await;
    assert_eq!(status, StatusCode::OK);

    let without = crate::app(state(None), "/", Arc::new(crate::ui::Ui::new("/")));
    let (status, body) = send(&without, post("/api/archive/0000000000000008")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["errors"][0]["msg"],
        "archive span storage was not configured"
    );
}

#[tokio::test]
async fn metrics_answer_as_jaeger_without_a_metrics_backend() {
    let (app, _) = app("/").await;
    for uri in [
        "/api/metrics/latencies?service=web&quantile=0.95&groupByOperation=true",
        "/api/metrics/calls?service=web&spanKind=server",
        "/api/metrics/errors?service=web",
        "/api/metrics/minstep",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{uri}");
        assert_eq!(
            body["errors"][0]["msg"],
            "trace metrics are currently disabled - no metrics backend configured"
        );
    }
    let (status, _) = get(&app, "/api/metrics/latencies?service=web").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "quantile is required");
    let (status, _) = get(&app, "/api/metrics/calls").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a service is required");
    // the UI's settings, as --query.ui-config gave them
    assert_eq!(
        get(&app, "/api/ui-config").await,
        (StatusCode::OK, json!({"linkPatterns": []}))
    );
}

#[tokio::test]
async fn api_v3_trace_by_id_is_written_in_chunks_that_make_one_document() {
    let web = Arc::new(Process {
        service_name: "web".into(),
        tags: vec![],
    });
    let spans: Vec<Span> = (1..=2_500)
        .map(|i| span(9, i, &web, "op", (i > 1).then_some(1)))
        .collect();
    let response = super::api_v3::stream_trace(spoor_model::Trace {
        spans,
        warnings: vec![],
    });
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Json = serde_json::from_slice(&bytes).unwrap();
    let resources = body["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(resources.len(), 3, "one resource group per 1,000 spans");
    let count: usize = resources
        .iter()
        .map(|rs| rs["scopeSpans"][0]["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, 2_500);
}

#[tokio::test]
async fn a_trace_by_id_is_streamed_as_the_same_json_the_whole_answer_was() {
    let web = Arc::new(Process {
        service_name: "web".into(),
        tags: vec![KeyValue::string("host", "a")],
    });
    // the same process again in another batch, and a second one
    let web_again = Arc::new((*web).clone());
    let db = Arc::new(Process {
        service_name: "db".into(),
        tags: vec![],
    });
    let spans: Vec<Span> = (1..=2_500)
        .map(|i| {
            let process = [&web, &web_again, &db][i as usize % 3];
            span(9, i, process, "op", (i > 1).then_some(1))
        })
        .collect();
    let trace = spoor_model::Trace {
        spans,
        warnings: vec!["clock skew".into()],
    };
    let whole = axum::body::to_bytes(
        super::ok(vec![crate::uimodel::ui_trace(&trace)], vec![]).into_body(),
        usize::MAX,
    )
    .await
    .unwrap();
    let streamed = axum::body::to_bytes(super::stream_ui_trace(trace).into_body(), usize::MAX)
        .await
        .unwrap();
    let whole: Json = serde_json::from_slice(&whole).unwrap();
    let streamed: Json = serde_json::from_slice(&streamed).unwrap();
    assert_eq!(streamed, whole);
    assert_eq!(
        streamed["data"][0]["processes"].as_object().unwrap().len(),
        2
    );
    assert_eq!(
        streamed["data"][0]["spans"].as_array().unwrap().len(),
        2_500
    );
}

/// `q` percent-encoded for a URI.
fn encoded(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn search(app: &axum::Router, q: &str, more: &str) -> (StatusCode, Json) {
    get(app, &format!("/api/v3/search?q={}{more}", encoded(q))).await
}

#[tokio::test]
async fn traceql_search_returns_the_traces_and_the_spans_it_matched() {
    let (app, _) = app("/").await;
    let (status, body) = search(
        &app,
        r#"{ resource.service.name = "web" } > { resource.service.name = "db" && name = "SELECT" }"#,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["matches"],
        json!([{"traceId": "00000000000000000000000000000001", "spanIds": ["0000000000000002"]}])
    );
    let spans = otlp_spans(&body);
    assert_eq!(spans, 2, "the whole trace");
    let progress = &body["search"];
    assert_eq!(progress["tracesReturned"], 1);
    assert_eq!(progress["limitReached"], false);
    assert_eq!(progress["complete"], true, "{progress}");
    // a numeric range on a tag: both web traces; limit cuts and says so
    let q = r#"{ resource.service.name = "web" && span.http.status_code >= 500 && span.http.status_code < 600 }"#;
    let (_, body) = search(&app, q, "").await;
    assert_eq!(body["matches"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = search(&app, q, "&limit=1").await;
    assert_eq!(body["matches"].as_array().unwrap().len(), 1);
    assert_eq!(body["search"]["limitReached"], true);
    // negation and regex: nothing matches, and the search says it looked at everything
    let (status, body) = search(
        &app,
        r#"{ resource.service.name = "web" && name !~ "(GET|POST) /" }"#,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["matches"].clone(), body["search"]["complete"].clone()),
        (json!([]), json!(true))
    );
}

#[tokio::test]
async fn traceql_search_errors_name_the_column_or_what_is_missing() {
    let (app, _) = app("/").await;
    let (status, body) = search(
        &app,
        r#"{ resource.service.name = "web" && duration > 10 }"#,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "q: column 47: duration is compared with a duration (10ms, 1.5s)"
    );
    let (status, body) = search(&app, "{ status = error }", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resource.service.name"),
        "{body}"
    );
    let (status, _) = get(&app, "/api/v3/search").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = search(&app, r#"{ resource.service.name = "web" }"#, "&limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn traceql_search_keeps_its_answer_within_the_response_limits() {
    let limits = ResponseLimits {
        spans: 1_000,
        bytes: 100,
    };
    let (app, _) = app_with_limits("/", limits).await;
    let (status, body) = search(&app, r#"{ resource.service.name = "web" }"#, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["matches"].as_array().unwrap().len(),
        1,
        "the first match, whole"
    );
    assert_eq!(body["search"]["responseLimitReached"], true);
    assert_eq!(body["search"]["limitReached"], false);
}
