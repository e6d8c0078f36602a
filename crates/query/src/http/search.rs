//! `GET /api/v3/search?q=<TraceQL>`: traces found by a query of the TraceQL
//! subset (docs/query-language.md), as OTLP JSON like the rest of api_v3,
//! with the spans each query matched and how far the search went.
//!
//! The store's own search narrows the candidates (the service, operation,
//! tags and durations one span of every match must have, see
//! [`spoor_traceql::plan`]); each candidate is then read and evaluated, until
//! `limit` traces matched or `searchDepth` candidates were read.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Serialize;
use spoor_query_params::{MAX_SEARCH_LIMIT, Params, rfc3339};
use spoor_storage::TraceQuery;

use super::ApiState;
use super::api_v3::V3Error;
use crate::read::found_traces;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v3/search", get(search))
}

/// Traces returned when `limit` is not given, as Tempo's search.
const DEFAULT_LIMIT: usize = 20;
/// The window searched when `start` is not given: the hour before `end`.
const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Matched {
    trace_id: String,
    span_ids: Vec<String>,
}

/// How far the search went, so a client can tell "no more" from "not looked".
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    /// Traces in `result`.
    traces_returned: usize,
    /// True when `limit` traces matched: there may be more.
    limit_reached: bool,
    /// Candidates the store's search gave and the query was evaluated on.
    candidates_read: usize,
    /// True when a match was left out to keep the answer within
    /// --query.max-response-spans/--query.max-response-bytes.
    response_limit_reached: bool,
    /// The most candidates this search would read (`searchDepth`).
    search_depth: usize,
    /// True when every candidate in the window was evaluated: the result
    /// is all there is (unless `limit_reached`).
    complete: bool,
    start: String,
    end: String,
}

async fn search(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> Result<Response, V3Error> {
    let p = Params(p);
    let text = p
        .one("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| V3Error::bad_request("parameter q (a TraceQL query) is required".into()))?;
    let query = spoor_traceql::parse(text).map_err(|e| V3Error::bad_request(format!("q: {e}")))?;
    let candidates =
        spoor_traceql::plan(&query).map_err(|e| V3Error::bad_request(e.to_string()))?;
    let count = |name: &str, default: usize| -> Result<usize, V3Error> {
        match p.one(name) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n.min(MAX_SEARCH_LIMIT)),
                _ => Err(V3Error::bad_request(format!(
                    "{name} must be a positive whole number, not {v:?}"
                ))),
            },
        }
    };
    let limit = count("limit", DEFAULT_LIMIT)?;
    let depth = count("searchDepth", (limit * 50).clamp(1_000, MAX_SEARCH_LIMIT))?.max(limit);
    let time = |name: &str| {
        p.one(name)
            .filter(|v| !v.is_empty())
            .map(|v| rfc3339(v, name))
            .transpose()
    };
    let end = time("end")
        .map_err(V3Error::bad_request)?
        .unwrap_or_else(SystemTime::now);
    let start = time("start")
        .map_err(V3Error::bad_request)?
        .unwrap_or_else(|| end - DEFAULT_WINDOW);
    if start >= end {
        return Err(V3Error::bad_request("start must be before end".into()));
    }
    let store_query = TraceQuery {
        service_name: candidates.service,
        operation_name: candidates.operation,
        tags: candidates.tags,
        start_time_min: start,
        start_time_max: end,
        duration_min: candidates.duration_min,
        duration_max: candidates.duration_max,
        num_traces: depth,
    };
    let ids = s.reader.find_trace_ids(&store_query).await?;
    let found = ids.len();
    let mut traces = std::pin::pin!(found_traces(Arc::clone(&s.reader), ids));
    let (mut read, mut spans, mut bytes) = (0, 0, 0);
    let mut resource_spans = Vec::new();
    let mut matches = Vec::new();
    let mut response_limit_reached = false;
    while let Some(trace) = traces.next().await {
        let trace = trace?;
        read += 1;
        let selected = query.matches(&trace);
        if selected.is_empty() {
            continue;
        }
        let otlp = spoor_codec::otlp::spans_to_otlp(&trace.spans);
        let json = serde_json::to_vec(&otlp).unwrap_or_default();
        // the first match is sent whole; later ones within the response limits
        if !matches.is_empty()
            && (spans + trace.spans.len() > s.limits.spans || bytes + json.len() > s.limits.bytes)
        {
            response_limit_reached = true;
            break;
        }
        spans += trace.spans.len();
        bytes += json.len();
        resource_spans.extend(otlp);
        matches.push(Matched {
            trace_id: format!("{:032x}", trace.spans[0].trace_id.0),
            span_ids: selected
                .iter()
                .map(|i| trace.spans[*i].span_id.to_string())
                .collect(),
        });
        if matches.len() == limit {
            break;
        }
    }
    let limit_reached = matches.len() == limit;
    let progress = Progress {
        traces_returned: matches.len(),
        limit_reached,
        response_limit_reached,
        candidates_read: read,
        search_depth: depth,
        complete: found < depth && read == found,
        start: rfc3339_text(start),
        end: rfc3339_text(end),
    };
    let body = serde_json::json!({
        "result": { "resourceSpans": resource_spans },
        "matches": matches,
        "search": progress,
    });
    Ok(axum::Json(body).into_response())
}

fn rfc3339_text(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
