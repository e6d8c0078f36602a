//! Zipkin's collector API on 9411: `POST /api/v2/spans` (JSON or protobuf)
//! and `POST /api/v1/spans` (JSON or Thrift), optionally gzip-encoded,
//! answered 202 as Zipkin does.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use spoor_codec::zipkin::{self, ZipkinError, ZipkinSpan};

use crate::{SpanProcessor, Transport};

#[derive(Clone)]
struct ZipkinState {
    processor: Arc<SpanProcessor>,
    max_body: usize,
}

pub fn router(processor: Arc<SpanProcessor>, max_body: usize) -> Router {
    Router::new()
        .route("/api/v2/spans", post(v2))
        .route("/api/v1/spans", post(v1))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(ZipkinState {
            processor,
            max_body,
        })
}

type Decoded = Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError>;

/// The request's media type, lower case; empty when it has none. A request
/// without one is refused: taking it as JSON, as Zipkin does, would let any
/// web page post spans into a local collector (`fetch` in `no-cors` mode may
/// omit the type, but cannot send `application/json` without a preflight).
fn media_type(headers: &HeaderMap) -> String {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn v2(State(s): State<ZipkinState>, headers: HeaderMap, body: Bytes) -> Response {
    let decode = match media_type(&headers).as_str() {
        "application/json" => zipkin::decode_v2_json as fn(&[u8]) -> Decoded,
        "application/x-protobuf" | "application/protobuf" => zipkin::decode_v2_proto,
        other => return unsupported(&s, other, "application/json or application/x-protobuf"),
    };
    handle(&s, &headers, body, decode).await
}

async fn v1(State(s): State<ZipkinState>, headers: HeaderMap, body: Bytes) -> Response {
    let decode = match media_type(&headers).as_str() {
        "application/json" => zipkin::decode_v1_json as fn(&[u8]) -> Decoded,
        "application/x-thrift" => zipkin::decode_v1_thrift,
        other => return unsupported(&s, other, "application/json or application/x-thrift"),
    };
    handle(&s, &headers, body, decode).await
}

fn unsupported(s: &ZipkinState, got: &str, want: &str) -> Response {
    s.processor
        .metrics()
        .reject_request(Transport::Zipkin, "unsupported_media_type");
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("unsupported content type {got:?}; use {want}"),
    )
        .into_response()
}

async fn handle(
    s: &ZipkinState,
    headers: &HeaderMap,
    body: Bytes,
    decode: fn(&[u8]) -> Decoded,
) -> Response {
    let body = match crate::body::decoded(headers, body, s.max_body) {
        Ok(b) => b,
        Err(e) => {
            s.processor
                .metrics()
                .reject_request(Transport::Zipkin, e.reason());
            return (e.status(), e.to_string()).into_response();
        }
    };
    let (spans, errors) = match decode(&body) {
        Ok(decoded) => decoded,
        Err(e) => {
            s.processor
                .metrics()
                .reject_request(Transport::Zipkin, "undecodable");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let result = s
        .processor
        .process(Transport::Zipkin, zipkin::to_model(spans), errors)
        .await;
    crate::body::outcome_response(result)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use prometheus_client::registry::Registry;
    use spoor_model::TraceId;
    use spoor_storage::SpanReader;
    use spoor_storage_memory::{MemoryConfig, MemoryStore};
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::CollectorMetrics;
    use crate::options::QueueFullAction;

    const SPANS: &str = r#"[{"traceId":"00000000000000aa","id":"0000000000000001","name":"get",
        "timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"zip"}}]"#;

    #[tokio::test]
    async fn zipkin_json_is_accepted_and_bad_requests_refused() {
        let store = Arc::new(MemoryStore::new(MemoryConfig {
            max_traces: 0,
            max_bytes: 1 << 30,
        }));
        let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
        let (queue, workers) = crate::queue::start(
            crate::queue::QueueBounds::spans(100),
            1,
            store.clone(),
            Arc::clone(&metrics),
            false,
        );
        std::mem::forget(workers);
        let app = router(
            Arc::new(SpanProcessor::new(queue, QueueFullAction::Reject, metrics)),
            1 << 16,
        );
        let post = |uri: &str, ct: &str, gzip: bool, body: Vec<u8>| {
            let mut r = Request::post(uri).header("content-type", ct);
            if gzip {
                r = r.header("content-encoding", "gzip");
            }
            r.body(Body::from(body)).unwrap()
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(SPANS.as_bytes()).unwrap();
        let cases = [
            (
                post(
                    "/api/v2/spans",
                    "application/json",
                    true,
                    gz.finish().unwrap(),
                ),
                StatusCode::ACCEPTED,
            ),
            (
                post("/api/v2/spans", "text/plain", false, SPANS.into()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                // what a web page's no-cors fetch can send
                Request::post("/api/v2/spans")
                    .body(Body::from(SPANS))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Request::post("/api/v1/spans")
                    .body(Body::from("[]"))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                post("/api/v2/spans", "application/json", false, b"[{".to_vec()),
                StatusCode::BAD_REQUEST,
            ),
            (
                post(
                    "/api/v2/spans",
                    "application/x-protobuf",
                    false,
                    b"\xff\xff".to_vec(),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                post(
                    "/api/v1/spans",
                    "application/x-thrift",
                    false,
                    b"\x0c\x00\x00\x00\x09".to_vec(),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                post(
                    "/api/v2/spans",
                    "application/json",
                    false,
                    SPANS.replace("aa", "00").into(),
                ),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (req, status) in cases {
            assert_eq!(app.clone().oneshot(req).await.unwrap().status(), status);
        }
        for _ in 0..100 {
            if let Some(t) = store.get_trace(TraceId(0xaa)).await.unwrap() {
                assert_eq!(t.spans[0].process.service_name, "zip");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("zipkin span not stored");
    }
}
