//! Jaeger's HTTP JSON API. Handlers parse parameters, call the store, and wrap
//! the result in Jaeger's envelope; every error leaves through [`ApiError`].
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use spoor_model::TraceId;
use spoor_server::storage::Storage;
use spoor_storage::{OperationQuery, StorageError};

use crate::metrics::QueryMetrics;
use crate::params::{self, Params, TracesRequest};
use crate::uimodel::{ui_dependency, ui_trace};

#[derive(Clone)]
pub struct ApiState {
    pub storage: Storage,
    pub metrics: Arc<QueryMetrics>,
}

/// Jaeger's response envelope.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Serialize)]
struct EnvelopeError {
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

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
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
            ApiError::Storage(e) => {
                tracing::error!(error = %e, "storage read failed");
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
    Ok(ok(s.storage.reader.get_services().await?, vec![]))
}

async fn service_operations(State(s): State<ApiState>, Path(service): Path<String>) -> ApiResult {
    let q = OperationQuery {
        service_name: service,
        span_kind: None,
    };
    let mut names: Vec<String> = s
        .storage
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
        .storage
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
    match request {
        TracesRequest::Search(query) => {
            let traces = s.storage.reader.find_traces(&query).await?;
            Ok(ok(traces.iter().map(ui_trace).collect(), vec![]))
        }
        TracesRequest::ByIds(ids) => {
            let mut found = Vec::new();
            let mut errors = Vec::new();
            for id in ids {
                match s.storage.reader.get_trace(id).await? {
                    Some(t) => found.push(ui_trace(&t)),
                    None => errors.push(EnvelopeError {
                        code: 404,
                        msg: "trace not found".into(),
                        trace_id: Some(id.to_string()),
                    }),
                }
            }
            Ok(ok(found, errors))
        }
    }
}

async fn trace_by_id(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id: TraceId = id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("unable to parse param 'traceID': {e}")))?;
    match s.storage.reader.get_trace(id).await? {
        Some(t) => Ok(ok(vec![ui_trace(&t)], vec![])),
        None => Err(ApiError::NotFound("trace not found".into())),
    }
}

async fn dependencies(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> ApiResult {
    let (end, lookback) =
        params::dependencies_window(&Params(p), SystemTime::now()).map_err(ApiError::BadRequest)?;
    let links = s
        .storage
        .dependencies
        .get_dependencies(end, lookback)
        .await?;
    Ok(ok(links.iter().map(ui_dependency).collect(), vec![]))
}

#[cfg(test)]
mod tests;
