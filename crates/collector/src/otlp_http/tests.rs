use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prometheus_client::registry::Registry;
use spoor_model::TraceId;
use spoor_storage::SpanReader;
use spoor_storage_memory::{MemoryConfig, MemoryStore};
use tower::ServiceExt;

use super::*;
use crate::metrics::CollectorMetrics;
use crate::options::QueueFullAction;
use crate::test_support::{assert_zero_id_refused, request_with, stored};

const MAX: usize = 64 * 1024;

fn setup(queue_size: usize) -> (Router, Arc<MemoryStore>, Arc<CollectorMetrics>) {
    let (processor, store, metrics) = crate::test_support::processor(queue_size);
    (router(processor, MAX), store, metrics)
}

fn post(content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post("/v1/traces").header("content-type", content_type);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.body(Body::from(body)).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn body(resp: Response) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

#[tokio::test]
async fn protobuf_and_gzip_json_are_stored() {
    let (app, store, _) = setup(100);
    let resp = app
        .clone()
        .oneshot(post(PROTOBUF, None, request_with(&[1]).encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], PROTOBUF);
    let answer = ExportTraceServiceResponse::decode(body(resp).await.as_slice()).unwrap();
    assert_eq!(answer.partial_success, None);
    assert!(stored(&store, 1).await);

    let json = serde_json::to_vec(&request_with(&[2])).unwrap();
    let resp = app
        .oneshot(post(
            "application/json; charset=utf-8",
            Some("gzip"),
            gzip(&json),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(stored(&store, 2).await);
}

#[tokio::test]
async fn invalid_spans_are_reported_and_the_rest_kept() {
    let (app, store, metrics) = setup(100);
    let resp = app
        .oneshot(post(PROTOBUF, None, request_with(&[0, 3]).encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer = ExportTraceServiceResponse::decode(body(resp).await.as_slice()).unwrap();
    assert_zero_id_refused(answer, &store).await;
    let label = crate::metrics::RejectLabel {
        transport: Transport::OtlpHttp,
        reason: "invalid_trace_id",
    };
    assert_eq!(metrics.spans_rejected.get_or_create(&label).get(), 1);
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let (app, store, metrics) = setup(100);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post(PROTOBUF, None, b"\xff\xff\xff garbage".to_vec()),
            StatusCode::BAD_REQUEST,
            "undecodable protobuf",
        ),
        (
            post(JSON, None, b"{not json".to_vec()),
            StatusCode::BAD_REQUEST,
            "undecodable json",
        ),
        (
            post("text/plain", None, b"hi".to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type",
        ),
        (
            post(PROTOBUF, Some("br"), vec![1]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content encoding",
        ),
        (
            post(PROTOBUF, Some("gzip"), b"not gzip".to_vec()),
            StatusCode::BAD_REQUEST,
            "gzip",
        ),
        (
            post(PROTOBUF, None, vec![0; MAX + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            post(PROTOBUF, Some("gzip"), gzip(&vec![0; MAX * 4])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds",
        ),
    ];
    for (req, status, needle) in cases {
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), status, "{needle}");
        let text = String::from_utf8_lossy(&body(resp).await).to_string();
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    let undecodable = crate::metrics::RejectLabel {
        transport: Transport::OtlpHttp,
        reason: "undecodable",
    };
    assert_eq!(
        metrics.requests_rejected.get_or_create(&undecodable).get(),
        3
    );
    let resp = app
        .oneshot(post(PROTOBUF, None, request_with(&[4]).encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(stored(&store, 4).await);
}

/// A store that never finishes a write, so the queue fills.
struct StuckWriter;

#[async_trait::async_trait]
impl spoor_storage::SpanWriter for StuckWriter {
    async fn write_spans(
        &self,
        _: Vec<spoor_model::Span>,
    ) -> Result<(), spoor_storage::StorageError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_full_queue_answers_429_and_counts() {
    let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
    let (queue, workers) = crate::queue::start(
        crate::queue::QueueBounds::spans(2),
        1,
        Arc::new(StuckWriter),
        Arc::clone(&metrics),
        false,
    );
    std::mem::forget(workers);
    let processor = Arc::new(SpanProcessor::new(
        queue,
        QueueFullAction::Reject,
        Arc::clone(&metrics),
    ));
    let app = router(processor, MAX);
    let send = || post(PROTOBUF, None, request_with(&[5, 6]).encode_to_vec());
    assert_eq!(
        app.clone().oneshot(send()).await.unwrap().status(),
        StatusCode::OK
    );
    let resp = app.clone().oneshot(send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    // RetryInfo, without which an OTLP client must drop the batch
    let status = RpcStatus::decode(body(resp).await.as_slice()).unwrap();
    assert_eq!(status.code, tonic::Code::ResourceExhausted as i32);
    assert_eq!(
        crate::retry::retry_delay(&status),
        Some(Duration::from_secs(1))
    );
    let json = app
        .oneshot(post(
            JSON,
            None,
            serde_json::to_vec(&request_with(&[7, 8])).unwrap(),
        ))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body(json).await).unwrap();
    assert_eq!(
        json["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert_eq!(json["details"][0]["retryDelay"], "1s");
    let full = crate::metrics::RejectLabel {
        transport: Transport::OtlpHttp,
        reason: "queue_full",
    };
    assert_eq!(metrics.spans_rejected.get_or_create(&full).get(), 4);
}

struct FailingWriter;

#[async_trait::async_trait]
impl spoor_storage::SpanWriter for FailingWriter {
    async fn write_spans(
        &self,
        _: Vec<spoor_model::Span>,
    ) -> Result<(), spoor_storage::StorageError> {
        Err(spoor_storage::StorageError::unavailable(
            "write",
            std::io::Error::other("es-3.internal:9200 refused: disk full"),
        ))
    }
}

fn acknowledging_after_write(
    writer: Arc<dyn spoor_storage::SpanWriter>,
) -> (Router, Arc<CollectorMetrics>) {
    let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
    let (queue, workers) = crate::queue::start(
        crate::queue::QueueBounds::spans(100),
        1,
        writer,
        Arc::clone(&metrics),
        false,
    );
    std::mem::forget(workers);
    let processor = SpanProcessor::new(queue, QueueFullAction::Reject, Arc::clone(&metrics))
        .ack_after_write(true);
    (router(Arc::new(processor), MAX), metrics)
}

#[tokio::test]
async fn acknowledged_after_write_means_stored() {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }));
    let (app, _) = acknowledging_after_write(store.clone());
    let resp = app
        .oneshot(post(PROTOBUF, None, request_with(&[41]).encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // no waiting: the answer came after the write
    assert!(store.get_trace(TraceId(41)).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_write_is_not_acknowledged() {
    let (app, metrics) = acknowledging_after_write(Arc::new(FailingWriter));
    let resp = app
        .oneshot(post(PROTOBUF, None, request_with(&[42]).encode_to_vec()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let status = RpcStatus::decode(body(resp).await.as_slice()).unwrap();
    assert_eq!(status.code, tonic::Code::Unavailable as i32);
    // the client learns the kind; the store's text (hosts, indices) is logged only
    assert_eq!(
        status.message,
        "spans could not be stored (storage unavailable); retry later"
    );
    assert_eq!(metrics.write_failures.get(), 1);
}
