//! OTLP over HTTP: `POST /v1/traces` with a protobuf or JSON body, optionally
//! gzip-compressed. Answers in the request's encoding; errors carry a
//! `google.rpc.Status`, as the OTLP specification asks.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::body::BodyError;
use crate::grpc::process_otlp;
use crate::retry::RpcStatus;
use crate::{ProcessError, SpanProcessor, Transport};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone)]
struct HttpState {
    processor: Arc<SpanProcessor>,
    max_body: usize,
}

pub fn router(processor: Arc<SpanProcessor>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(HttpState {
            processor,
            max_body,
        })
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

struct Failure {
    status: StatusCode,
    grpc_code: tonic::Code,
    reason: &'static str,
    message: String,
}

fn fail(
    status: StatusCode,
    grpc_code: tonic::Code,
    reason: &'static str,
    message: impl Into<String>,
) -> Failure {
    Failure {
        status,
        grpc_code,
        reason,
        message: message.into(),
    }
}

fn respond(encoding: Encoding, status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = match encoding {
        Encoding::Protobuf => PROTOBUF,
        Encoding::Json => JSON,
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// The OTLP error answer: a google.rpc.Status in the request's encoding;
/// 429 and 503 carry RetryInfo and Retry-After, as the specification's
/// throttling section asks.
fn error_response(encoding: Encoding, f: Failure) -> Response {
    let mut status = RpcStatus::new(f.grpc_code, f.message);
    let retry = matches!(
        f.status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    );
    if retry {
        status = status.retry_later();
    }
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status.to_json()).unwrap_or_default(),
    };
    let mut resp = respond(encoding, f.status, body);
    if retry {
        let seconds = crate::retry::RETRY_DELAY.as_secs().to_string();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&seconds).expect("digits"),
        );
    }
    resp
}

fn encoding_of(headers: &HeaderMap) -> Option<Encoding> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        PROTOBUF => Some(Encoding::Protobuf),
        JSON => Some(Encoding::Json),
        _ => None,
    }
}

async fn export(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(encoding) = encoding_of(&headers) else {
        state
            .processor
            .metrics()
            .reject_request(Transport::OtlpHttp, "unsupported_media_type");
        let msg = format!("unsupported content type; use {PROTOBUF} or {JSON}");
        return error_response(
            Encoding::Json,
            fail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                "",
                msg,
            ),
        );
    };
    match handle(&state, encoding, &headers, body).await {
        Ok(resp) => resp,
        Err(f) => {
            state
                .processor
                .metrics()
                .reject_request(Transport::OtlpHttp, f.reason);
            error_response(encoding, f)
        }
    }
}

async fn handle(
    state: &HttpState,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let body = crate::body::decoded(headers, body, state.max_body).map_err(|e| {
        let code = match e {
            BodyError::TooLarge(_) => tonic::Code::ResourceExhausted,
            _ => tonic::Code::InvalidArgument,
        };
        fail(e.status(), code, e.reason(), e.to_string())
    })?;
    let converted = match encoding {
        Encoding::Protobuf => spoor_codec::otlp::decode_export_request(&body)
            .map_err(|e| format!("undecodable protobuf body: {e}")),
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                spoor_codec::otlp::spans_from_otlp(r.resource_spans).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("undecodable json body: {e}")),
    }
    .map_err(|m| {
        fail(
            StatusCode::BAD_REQUEST,
            tonic::Code::InvalidArgument,
            "undecodable",
            m,
        )
    })?;
    let response = process_otlp(&state.processor, Transport::OtlpHttp, converted)
        .await
        .map_err(|e| match e {
            ProcessError::QueueFull => fail(
                StatusCode::TOO_MANY_REQUESTS,
                tonic::Code::ResourceExhausted,
                "queue_full",
                e.to_string(),
            ),
            ProcessError::WriteFailed(_) => fail(
                StatusCode::SERVICE_UNAVAILABLE,
                tonic::Code::Unavailable,
                "write_failed",
                e.to_string(),
            ),
        })?;
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
    };
    Ok(respond(encoding, StatusCode::OK, body))
}

#[cfg(test)]
mod tests;
