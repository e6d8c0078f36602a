//! Jaeger's collector HTTP endpoint: `POST /api/traces` with a Thrift `Batch`
//! in the body, as Jaeger clients configured with an HTTP sender post it.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use spoor_codec::thrift::{Protocol, decode_batch};

use crate::sampling::{self, Strategies};
use crate::{SpanProcessor, Transport};

pub fn router(
    processor: Arc<SpanProcessor>,
    strategies: Arc<Strategies>,
    max_body: usize,
) -> Router {
    Router::new()
        .route("/api/traces", post(post_traces))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(processor)
        .merge(
            Router::new()
                .route("/api/sampling", get(sampling::http_strategy))
                .with_state(strategies),
        )
}

fn protocol_of(headers: &HeaderMap) -> Option<Protocol> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    match ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "application/x-thrift" | "application/vnd.apache.thrift.binary" => Some(Protocol::Binary),
        "application/vnd.apache.thrift.compact" => Some(Protocol::Compact),
        _ => None,
    }
}

async fn post_traces(
    State(processor): State<Arc<SpanProcessor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reject = |reason: &'static str, status: StatusCode, msg: String| {
        processor
            .metrics()
            .reject_request(Transport::JaegerHttp, reason);
        (status, msg).into_response()
    };
    let Some(protocol) = protocol_of(&headers) else {
        let msg = "unsupported content type; use application/x-thrift or application/vnd.apache.thrift.binary";
        // Jaeger answers 400 for a type it does not take; none at all is 415
        let status = if headers.contains_key(header::CONTENT_TYPE) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        };
        return reject("unsupported_media_type", status, msg.into());
    };
    let batch = match decode_batch(&body, protocol) {
        Ok(b) => b,
        Err(e) => {
            return reject(
                "undecodable",
                StatusCode::BAD_REQUEST,
                format!("unable to process request body: {e}"),
            );
        }
    };
    crate::body::outcome_response(
        processor
            .process(Transport::JaegerHttp, batch.spans, Vec::new())
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CollectorMetrics;
    use crate::options::QueueFullAction;
    use axum::body::Body;
    use axum::http::Request;
    use prometheus_client::registry::Registry;
    use spoor_model::{Process, Span, SpanId, TraceId};
    use spoor_storage::SpanReader;
    use spoor_storage_memory::{MemoryConfig, MemoryStore};
    use std::time::{Duration, UNIX_EPOCH};
    use tower::ServiceExt;

    fn span(trace: u128) -> Span {
        Span {
            trace_id: TraceId(trace),
            span_id: SpanId(1),
            operation_name: "op".into(),
            references: vec![],
            flags: 1,
            start_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(1),
            tags: vec![],
            logs: vec![],
            process: Default::default(),
            warnings: vec![],
        }
    }

    #[tokio::test]
    async fn thrift_batches_are_accepted_and_bad_ones_refused() {
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
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sampling: spoor_sampling::SamplingOptions,
        }
        let options = <Cli as clap::Parser>::try_parse_from([
            "t",
            "--sampling.default-sampling-probability=0.25",
        ])
        .unwrap()
        .sampling;
        let provider = spoor_sampling::FileProvider::load(options).await.unwrap();
        let strategies = Arc::new(Strategies::new(provider, Default::default()));
        let processor = Arc::new(SpanProcessor::new(queue, QueueFullAction::Reject, metrics));
        let app = router(processor, strategies, 1 << 20);
        let process = Process {
            service_name: "thrift-http".into(),
            tags: vec![],
        };
        let body = spoor_codec::thrift::encode_batch(&process, &[span(5)], Protocol::Binary);
        let post = |ct: &str, body: Vec<u8>| {
            Request::post("/api/traces")
                .header("content-type", ct)
                .body(Body::from(body))
                .unwrap()
        };

        let resp = app
            .clone()
            .oneshot(post("application/x-thrift", body.clone()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let resp = app
            .clone()
            .oneshot(post("application/vnd.apache.thrift.binary", body.clone()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let resp = app
            .clone()
            .oneshot(post("application/json", body.clone()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let untyped = Request::post("/api/traces")
            .body(Body::from(body.clone()))
            .unwrap();
        let resp = app.clone().oneshot(untyped).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let resp = app
            .clone()
            .oneshot(post("application/x-thrift", vec![0xff; 10]))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let resp = app
            .clone()
            .oneshot(get("/api/sampling?service=thrift-http"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}})
        );
        for uri in ["/api/sampling", "/api/sampling?service=a&service=b"] {
            assert_eq!(
                app.clone().oneshot(get(uri)).await.unwrap().status(),
                StatusCode::BAD_REQUEST,
                "{uri}"
            );
        }

        let mut stored = None;
        for _ in 0..100 {
            stored = store.get_trace(TraceId(5)).await.unwrap();
            if stored.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            stored.expect("stored").spans[0].process.service_name,
            "thrift-http"
        );
    }
}
