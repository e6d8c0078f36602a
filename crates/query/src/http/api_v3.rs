//! api_v3 over HTTP, as Jaeger v2's gateway serves it under `/api/v3/`:
//! traces as OTLP JSON wrapped in `{"result": ...}`, camelCase parameters
//! (snake_case accepted), errors as `{"error":{"httpCode":..,"message":..}}`.
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Serialize;
use spoor_model::{SpanKind, TraceId};
use spoor_query_params::{self as params, Params};
use spoor_storage::{OperationQuery, SpanReader, StorageError};

use super::{ApiState, ResponseLimits, Streamed, stream_json, stream_spans};
use crate::api_v3::{SPANS_PER_CHUNK, parse_trace_id, summary};
use crate::read::found_traces;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(trace_summaries))
}

/// Jaeger's gateway error body.
pub struct V3Error(StatusCode, String);

impl V3Error {
    pub(super) fn bad_request(message: String) -> Self {
        V3Error(StatusCode::BAD_REQUEST, message)
    }

    /// An answer that could not be written: logged, and a plain 500.
    pub(super) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "answer not serializable");
        V3Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "answer not serializable".into(),
        )
    }
}

impl From<StorageError> for V3Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::InvalidQuery(m) => V3Error::bad_request(m),
            e => {
                tracing::error!(error = %spoor_storage::Chain(&e), "storage read failed");
                V3Error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage read failed".into(),
                )
            }
        }
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "httpCode": self.0.as_u16(), "message": self.1 }
        });
        (self.0, axum::Json(body)).into_response()
    }
}

type V3Result = Result<Response, V3Error>;

fn json(body: &impl Serialize) -> Response {
    axum::Json(body).into_response()
}

fn no_traces() -> V3Error {
    V3Error(StatusCode::NOT_FOUND, "No traces found".into())
}

async fn services(State(s): State<ApiState>) -> V3Result {
    let services = s.reader.get_services().await?;
    Ok(json(&serde_json::json!({ "services": services })))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OperationJson {
    name: String,
    span_kind: &'static str,
}

async fn operations(State(s): State<ApiState>, Query(p): Query<Vec<(String, String)>>) -> V3Result {
    let p = Params(p);
    let span_kind = params::api_v3_span_kind(&p).map_err(V3Error::bad_request)?;
    let service_name = p.one("service").unwrap_or_default().to_string();
    let operations: Vec<OperationJson> = s
        .reader
        .get_operations(&OperationQuery {
            service_name,
            span_kind,
        })
        .await?
        .into_iter()
        .map(|o| OperationJson {
            name: o.name,
            // Jaeger's gateway names a kind-less operation internal
            span_kind: match o.span_kind {
                SpanKind::Unspecified => SpanKind::Internal.as_str(),
                kind => kind.as_str(),
            },
        })
        .collect();
    Ok(json(&serde_json::json!({ "operations": operations })))
}

async fn get_trace(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(p): Query<Vec<(String, String)>>,
) -> V3Result {
    let id = parse_trace_id(&id)
        .map_err(|e| V3Error::bad_request(format!("malformed parameter trace_id: {e}")))?;
    // the window and rawTraces are checked as Jaeger checks them; every
    // store finds a trace by id alone, and Spoor never adjusts traces
    let p = Params(p);
    for (name, alias) in [("startTime", "start_time"), ("endTime", "end_time")] {
        if let Some((k, v)) =
            p.0.iter()
                .find(|(k, v)| (k == name || k == alias) && !v.is_empty())
        {
            params::rfc3339(v, k).map_err(V3Error::bad_request)?;
        }
    }
    let trace = s.reader.get_trace(id).await?.ok_or_else(no_traces)?;
    Ok(stream_trace(trace))
}

/// One trace as `{"result":{"resourceSpans":[...]}}`, written
/// [`SPANS_PER_CHUNK`] spans at a time as the client reads, as gRPC sends
/// it: a trace of a million spans never sits whole in memory as OTLP or JSON.
pub(super) fn stream_trace(trace: spoor_model::Trace) -> Response {
    let render = |start: usize, spans: &[spoor_model::Span]| {
        let mut json = Vec::new();
        for rs in spoor_codec::otlp::spans_to_otlp(spans) {
            if start > 0 || !json.is_empty() {
                json.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut json, &rs) {
                tracing::error!(error = %e, "trace not serializable");
            }
        }
        json
    };
    stream_spans(
        trace,
        SPANS_PER_CHUNK,
        b"{\"result\":{\"resourceSpans\":[".to_vec(),
        render,
        b"]}}".to_vec(),
    )
}

async fn find_traces(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> V3Result {
    let query = params::api_v3_query(&Params(p)).map_err(V3Error::bad_request)?;
    let ids = s.reader.find_trace_ids(&query).await?;
    if ids.is_empty() {
        return Err(no_traces());
    }
    Ok(stream_resource_spans(Arc::clone(&s.reader), ids, s.limits))
}

/// `{"result":{"resourceSpans":[...]}}` of the traces of `ids`, streamed;
/// the traces past `limits` are logged (the result has no place to say so).
fn stream_resource_spans(
    reader: Arc<dyn SpanReader>,
    ids: Vec<TraceId>,
    limits: ResponseLimits,
) -> Response {
    // a trace's resource spans, comma-separated: the helper separates traces
    let render = |trace: &spoor_model::Trace| {
        let mut json = Vec::new();
        for rs in spoor_codec::otlp::spans_to_otlp(&trace.spans) {
            if !json.is_empty() {
                json.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut json, &rs) {
                tracing::error!(error = %e, "trace not serializable");
            }
        }
        json
    };
    let close = |streamed: Streamed| {
        if streamed.left_out > 0 {
            tracing::warn!(
                left_out = streamed.left_out,
                total = streamed.total,
                "api_v3 answer truncated at --query.max-response-spans/--query.max-response-bytes"
            );
        }
        b"]}}".to_vec()
    };
    stream_json(
        reader,
        ids,
        limits,
        b"{\"result\":{\"resourceSpans\":[",
        render,
        close,
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSummaryJson {
    name: String,
    span_count: i32,
    error_span_count: i32,
}

/// A summary as Jaeger's JSON has it: times as decimal strings (proto3 JSON
/// of fixed64), so JavaScript keeps every nanosecond.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceSummaryJson {
    trace_id: String,
    root_service_name: String,
    root_operation_name: String,
    min_start_time_unix_nano: String,
    max_end_time_unix_nano: String,
    span_count: i32,
    error_span_count: i32,
    orphan_span_count: i32,
    services: Vec<ServiceSummaryJson>,
}

async fn trace_summaries(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> V3Result {
    let query = params::api_v3_query(&Params(p)).map_err(V3Error::bad_request)?;
    let ids = s.reader.find_trace_ids(&query).await?;
    let mut summaries = Vec::with_capacity(ids.len());
    let mut traces = std::pin::pin!(found_traces(Arc::clone(&s.reader), ids));
    while let Some(trace) = traces.next().await {
        let t = summary(&trace?);
        summaries.push(TraceSummaryJson {
            trace_id: t.trace_id,
            root_service_name: t.root_service_name,
            root_operation_name: t.root_operation_name,
            min_start_time_unix_nano: t.min_start_time_unix_nano.to_string(),
            max_end_time_unix_nano: t.max_end_time_unix_nano.to_string(),
            span_count: t.span_count,
            error_span_count: t.error_span_count,
            orphan_span_count: t.orphan_span_count,
            services: t
                .services
                .into_iter()
                .map(|s| ServiceSummaryJson {
                    name: s.name,
                    span_count: s.span_count,
                    error_span_count: s.error_span_count,
                })
                .collect(),
        });
    }
    Ok(json(&serde_json::json!({ "summaries": summaries })))
}
