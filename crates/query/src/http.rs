//! Jaeger's HTTP JSON API. Handlers parse parameters, call the store, and wrap
//! the result in Jaeger's envelope; every error leaves through [`ApiError`].
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;
use spoor_model::TraceId;
use spoor_storage::{Archive, DependencyReader, OperationQuery, SpanReader, StorageError};

use crate::metrics::QueryMetrics;
use crate::uimodel::{ui_dependency, ui_trace};
use spoor_query_params::{self as params, Params, TracesRequest};

#[derive(Clone)]
pub struct ApiState {
    pub reader: Arc<dyn SpanReader>,
    pub dependencies: Arc<dyn DependencyReader>,
    /// Where `POST /api/archive/{id}` copies a trace; None: not configured.
    pub archive: Option<Archive>,
    /// RED metrics for `/api/metrics/*`; None: Jaeger's 501 (no metrics
    /// backend), as in a query process apart from the collector.
    pub red: Option<RedSource>,
    /// `--query.ui-config`, for the UI (`/api/ui-config`).
    pub ui_config: Arc<serde_json::Value>,
    pub metrics: Arc<QueryMetrics>,
    pub limits: ResponseLimits,
}

/// How much one answer with traces may hold.
#[derive(Clone, Copy, Debug)]
pub struct ResponseLimits {
    pub spans: usize,
    pub bytes: usize,
}

/// Chunks of an answer queued for the client at once.
const TRACES_IN_FLIGHT: usize = 4;

/// Jaeger's response envelope.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Serialize, Debug)]
pub(crate) struct EnvelopeError {
    code: u16,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

fn ok<T: Serialize>(data: Vec<T>, errors: Vec<EnvelopeError>) -> Response {
    let total = data.len();
    let errors = (!errors.is_empty()).then_some(errors);
    Json(Envelope {
        data,
        total,
        limit: 0,
        offset: 0,
        errors,
    })
    .into_response()
}

/// Where `/api/metrics/*` reads RED metrics from.
#[derive(Clone)]
pub enum RedSource {
    /// The collector in this process.
    Local(Arc<spoor_red::Red>),
    /// Prometheus, scraping the collectors (`--metrics-storage.type=prometheus`).
    Prometheus(Arc<crate::prometheus::PrometheusReader>),
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    /// Jaeger's answer (500) when no archive store is configured.
    NoArchive,
    /// Jaeger's answer (501) to `/api/metrics/*` when no metrics backend is
    /// configured, which its UI's Monitor tab shows as its start page: a
    /// query process without a collector beside it.
    NoMetrics,
    /// Prometheus could not answer: Jaeger's 500, the cause in the log.
    Metrics(crate::prometheus::PrometheusError),
    Storage(StorageError),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::InvalidQuery(m) => ApiError::BadRequest(m),
            e => ApiError::Storage(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::NoArchive => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "archive span storage was not configured".to_string(),
            ),
            ApiError::NoMetrics => (
                StatusCode::NOT_IMPLEMENTED,
                "trace metrics are currently disabled - no metrics backend configured".to_string(),
            ),
            ApiError::Metrics(e) => {
                tracing::error!(error = %spoor_storage::Chain(&e), "metrics read failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "metrics read failed".to_string(),
                )
            }
            ApiError::Storage(e) => {
                tracing::error!(error = %spoor_storage::Chain(&e), "storage read failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage read failed".to_string(),
                )
            }
        };
        let body = Envelope::<Option<()>> {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: status.as_u16(),
                msg,
                trace_id: None,
            }]),
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

pub fn router(state: ApiState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(traces))
        .route("/api/traces/{trace_id}", get(trace_by_id))
        .route("/api/dependencies", get(dependencies))
        .route("/api/archive/{trace_id}", post(archive_trace))
        .route("/api/metrics/latencies", get(latencies))
        .route("/api/metrics/calls", get(calls))
        .route("/api/metrics/errors", get(errors))
        .route("/api/metrics/minstep", get(min_step))
        .route("/api/ui-config", get(ui_config))
        .route("/api/transform", transform::route())
        .merge(api_v3::routes())
        .merge(search::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(metrics, record))
        .with_state(state)
}

/// Counts requests and their latency per route and status.
async fn record(
    State(metrics): State<Arc<QueryMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(route, response.status().as_u16(), started.elapsed());
    response
}

async fn services(State(s): State<ApiState>) -> ApiResult {
    Ok(ok(s.reader.get_services().await?, vec![]))
}

async fn service_operations(State(s): State<ApiState>, Path(service): Path<String>) -> ApiResult {
    let q = OperationQuery {
        service_name: service,
        span_kind: None,
    };
    let mut names: Vec<String> = s
        .reader
        .get_operations(&q)
        .await?
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.dedup();
    Ok(ok(names, vec![]))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UiOperation {
    name: String,
    span_kind: &'static str,
}

async fn operations(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> ApiResult {
    let p = Params(p);
    let service_name = params::required(&p, "service")
        .map_err(ApiError::BadRequest)?
        .to_string();
    let span_kind = params::span_kind(&p).map_err(ApiError::BadRequest)?;
    let ops = s
        .reader
        .get_operations(&OperationQuery {
            service_name,
            span_kind,
        })
        .await?;
    let ops = ops
        .into_iter()
        .map(|o| UiOperation {
            name: o.name,
            span_kind: o.span_kind.as_str(),
        })
        .collect();
    Ok(ok::<UiOperation>(ops, vec![]))
}

async fn traces(State(s): State<ApiState>, Query(p): Query<Vec<(String, String)>>) -> ApiResult {
    let request =
        params::traces_request(&Params(p), SystemTime::now()).map_err(ApiError::BadRequest)?;
    let ids = match request {
        TracesRequest::Search(query) => s.reader.find_trace_ids(&query).await?,
        TracesRequest::ByIds(ids) => ids,
    };
    Ok(stream_traces(Arc::clone(&s.reader), ids, s.limits))
}

/// Jaeger's envelope of traces; traces past `limits` are left out and the
/// envelope's `errors` says so, as it says which were not found.
fn stream_traces(
    reader: Arc<dyn SpanReader>,
    ids: Vec<TraceId>,
    limits: ResponseLimits,
) -> Response {
    let render = |trace: &spoor_model::Trace| match serde_json::to_vec(&ui_trace(trace)) {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "trace not serializable");
            Vec::new()
        }
    };
    let close = move |mut streamed: Streamed| {
        if streamed.left_out > 0 {
            streamed.errors.push(EnvelopeError {
                code: 413,
                msg: format!(
                    "response truncated: {} of {} traces left out, over the answer's \
                     bound of {} spans or {} bytes (--query.max-response-spans, --query.max-response-bytes); \
                     narrow the search or lower its limit",
                    streamed.left_out, streamed.total, limits.spans, limits.bytes
                ),
                trace_id: None,
            });
        }
        let tail = serde_json::json!({
            "total": streamed.sent,
            "limit": 0,
            "offset": 0,
            "errors": (!streamed.errors.is_empty()).then_some(streamed.errors),
        });
        // the tail object without its opening brace closes the envelope
        let tail = tail.to_string();
        let mut end = b"],".to_vec();
        end.extend_from_slice(&tail.as_bytes()[1..]);
        end
    };
    stream_json(reader, ids, limits, b"{\"data\":[", render, close)
}

/// What a streamed answer sent and left out, for its closing part.
pub(crate) struct Streamed {
    pub sent: usize,
    pub total: usize,
    pub left_out: usize,
    /// traces not found or not read, with their ids
    pub errors: Vec<EnvelopeError>,
}

/// A JSON answer of the traces of `ids`: `open`, then each trace as
/// `render` writes it (empty: left out), comma-separated, then `close`. Written trace by trace as each is read, so an answer never
/// sits whole in memory; traces past `limits` are left out, the first
/// always sent whole.
pub(crate) fn stream_json(
    reader: Arc<dyn SpanReader>,
    ids: Vec<TraceId>,
    limits: ResponseLimits,
    open: &'static [u8],
    render: impl Fn(&spoor_model::Trace) -> Vec<u8> + Send + 'static,
    close: impl FnOnce(Streamed) -> Vec<u8> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(TRACES_IN_FLIGHT);
    tokio::spawn(async move {
        let total = ids.len();
        let mut traces = std::pin::pin!(crate::read::traces_of(reader, ids));
        if tx.send(Ok(Bytes::from_static(open))).await.is_err() {
            return;
        }
        let (mut sent, mut spans, mut bytes, mut left_out) = (0usize, 0usize, 0usize, 0usize);
        let mut errors = Vec::new();
        while let Some((id, found)) = traces.next().await {
            let trace = match found {
                Ok(Some(trace)) => trace,
                Ok(None) => {
                    errors.push(EnvelopeError {
                        code: 404,
                        msg: "trace not found".into(),
                        trace_id: Some(id.to_string()),
                    });
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %spoor_storage::Chain(&e), trace = %id, "storage read failed");
                    errors.push(EnvelopeError {
                        code: 500,
                        msg: "storage read failed".into(),
                        trace_id: Some(id.to_string()),
                    });
                    continue;
                }
            };
            let json = render(&trace);
            if json.is_empty() {
                continue;
            }
            let over =
                spans + trace.spans.len() > limits.spans || bytes + json.len() > limits.bytes;
            if over && sent > 0 {
                left_out += 1;
                continue;
            }
            spans += trace.spans.len();
            bytes += json.len();
            let mut chunk = Vec::with_capacity(json.len() + 1);
            if sent > 0 {
                chunk.push(b',');
            }
            sent += 1;
            chunk.extend_from_slice(&json);
            if tx.send(Ok(chunk.into())).await.is_err() {
                return; // the client went away
            }
        }
        let end = close(Streamed {
            sent,
            total,
            left_out,
            errors,
        });
        let _ = tx.send(Ok(end.into())).await;
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}

async fn trace_by_id(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id: TraceId = id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("unable to parse param 'traceID': {e}")))?;
    match s.reader.get_trace(id).await? {
        Some(t) => Ok(stream_ui_trace(t)),
        None => Err(ApiError::NotFound("trace not found".into())),
    }
}

/// Spans of the UI's JSON written at once while streaming a trace.
const UI_SPANS_PER_CHUNK: usize = 1_000;

/// One trace in Jaeger's envelope, the same JSON as `ok(vec![ui_trace(&t)])`,
/// written a thousand spans at a time as the client reads: a trace of a
/// million spans is never whole in memory as the UI's model or its JSON.
fn stream_ui_trace(trace: spoor_model::Trace) -> Response {
    let (processes, of_span) = crate::uimodel::trace_processes(&trace);
    let processes = serde_json::to_string(&crate::uimodel::ui_processes(&processes))
        .expect("processes serialize");
    let trace_id = trace.spans.first().map(|s| s.trace_id.to_string());
    let warnings = (!trace.warnings.is_empty()).then(|| trace.warnings.clone());
    let open = format!(
        r#"{{"data":[{{"traceID":{},"spans":["#,
        serde_json::to_string(&trace_id.unwrap_or_default()).expect("a string serializes")
    );
    let close = format!(
        r#"],"processes":{processes},"warnings":{}}}],"total":1,"limit":0,"offset":0,"errors":null}}"#,
        serde_json::to_string(&warnings).expect("strings serialize")
    );
    let render = move |start: usize, spans: &[spoor_model::Span]| {
        let mut json = Vec::new();
        for (n, span) in spans.iter().enumerate() {
            if start + n > 0 {
                json.push(b',');
            }
            let ui = crate::uimodel::ui_span(span, of_span[start + n]);
            serde_json::to_writer(&mut json, &ui).expect("a UI span serializes");
        }
        json
    };
    stream_spans(
        trace,
        UI_SPANS_PER_CHUNK,
        open.into_bytes(),
        render,
        close.into_bytes(),
    )
}

/// A JSON answer written as `open`, then `render(index of the first span,
/// spans)` for each run of `per_chunk` spans of `trace` as the client reads,
/// then `close`: a large trace is never whole in memory as JSON.
pub(crate) fn stream_spans(
    trace: spoor_model::Trace,
    per_chunk: usize,
    open: Vec<u8>,
    render: impl Fn(usize, &[spoor_model::Span]) -> Vec<u8> + Send + 'static,
    close: Vec<u8>,
) -> Response {
    let trace = Arc::new(trace);
    let chunks = trace.spans.len().div_ceil(per_chunk);
    let body = futures::stream::iter(0..chunks).map(move |i| {
        let start = i * per_chunk;
        let end = (start + per_chunk).min(trace.spans.len());
        Ok::<_, std::convert::Infallible>(Bytes::from(render(start, &trace.spans[start..end])))
    });
    let stream = futures::stream::once(async move { Ok(Bytes::from(open)) })
        .chain(body)
        .chain(futures::stream::once(async move { Ok(Bytes::from(close)) }));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Copies a trace into the archive store; Jaeger's answer is an empty list.
async fn archive_trace(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id: TraceId = id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("unable to parse param 'traceID': {e}")))?;
    let archive = s.archive.as_ref().ok_or(ApiError::NoArchive)?;
    if archive.archive(s.reader.as_ref(), id).await? {
        Ok(ok::<()>(vec![], vec![]))
    } else {
        Err(ApiError::NotFound("trace not found".into()))
    }
}

/// Service performance metrics in Jaeger's shape (a `MetricFamily` of
/// gauges), from the RED metrics the collector in this process computes.
async fn latencies(State(s): State<ApiState>, Query(p): Query<Vec<(String, String)>>) -> ApiResult {
    let q =
        params::metrics_query(&Params(p), SystemTime::now(), true).map_err(ApiError::BadRequest)?;
    let quantile = q.quantile.unwrap_or(0.95);
    metric_family(
        &s,
        &q,
        spoor_red::Figure::Latency(quantile),
        "service_latencies",
        &format!("{quantile:.2}th quantile latency, grouped by service"),
    )
    .await
}

async fn calls(State(s): State<ApiState>, Query(p): Query<Vec<(String, String)>>) -> ApiResult {
    let q = params::metrics_query(&Params(p), SystemTime::now(), false)
        .map_err(ApiError::BadRequest)?;
    metric_family(
        &s,
        &q,
        spoor_red::Figure::CallRate,
        "service_call_rate",
        "calls/sec, grouped by service",
    )
    .await
}

async fn errors(State(s): State<ApiState>, Query(p): Query<Vec<(String, String)>>) -> ApiResult {
    let q = params::metrics_query(&Params(p), SystemTime::now(), false)
        .map_err(ApiError::BadRequest)?;
    metric_family(
        &s,
        &q,
        spoor_red::Figure::ErrorRate,
        "service_error_rate",
        "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service",
    )
    .await
}

async fn metric_family(
    s: &ApiState,
    q: &params::MetricsQuery,
    figure: spoor_red::Figure,
    name: &str,
    help: &str,
) -> ApiResult {
    let series = match s.red.as_ref().ok_or(ApiError::NoMetrics)? {
        RedSource::Local(red) => {
            let window = spoor_red::Window {
                services: &q.services,
                span_kinds: &q.span_kinds,
                group_by_operation: q.group_by_operation,
                end: q.end,
                lookback: q.lookback,
                step: q.step,
                rate_per: q.rate_per,
            };
            red.query(&window, figure)
        }
        RedSource::Prometheus(prometheus) => prometheus
            .query(q, figure)
            .await
            .map_err(ApiError::Metrics)?,
    };
    let (name, help) = if q.group_by_operation {
        (
            name.replacen("service", "service_operation", 1),
            format!("{help} & operation"),
        )
    } else {
        (name.to_string(), help.to_string())
    };
    let metrics: Vec<serde_json::Value> = series
        .into_iter()
        .map(|series| {
            let mut labels = vec![serde_json::json!({"name": "service_name", "value": series.service})];
            if let Some(op) = series.operation {
                labels.push(serde_json::json!({"name": "operation", "value": op}));
            }
            let points: Vec<serde_json::Value> = series
                .points
                .into_iter()
                .map(|(t, v)| serde_json::json!({"gaugeValue": {"doubleValue": v}, "timestamp": rfc3339(t)}))
                .collect();
            serde_json::json!({"labels": labels, "metricPoints": points})
        })
        .collect();
    Ok(
        Json(serde_json::json!({"name": name, "type": "GAUGE", "help": help, "metrics": metrics}))
            .into_response(),
    )
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The RED metrics' step, in milliseconds, in Jaeger's envelope.
async fn min_step(State(s): State<ApiState>) -> ApiResult {
    // Prometheus can step as finely as it scraped: Jaeger's reader says 1 ms
    let step = match s.red.as_ref().ok_or(ApiError::NoMetrics)? {
        RedSource::Local(_) => spoor_red::STEP.as_millis() as u64,
        RedSource::Prometheus(_) => 1,
    };
    let body = serde_json::json!({
        "data": step, "total": 0, "limit": 0, "offset": 0, "errors": null
    });
    Ok(Json(body).into_response())
}

async fn ui_config(State(s): State<ApiState>) -> Response {
    Json(s.ui_config.as_ref()).into_response()
}

async fn dependencies(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> ApiResult {
    let (end, lookback) =
        params::dependencies_window(&Params(p), SystemTime::now()).map_err(ApiError::BadRequest)?;
    let links = s.dependencies.get_dependencies(end, lookback).await?;
    Ok(ok(links.iter().map(ui_dependency).collect(), vec![]))
}

mod api_v3;
mod search;
mod transform;

#[cfg(test)]
mod tests;
