//! `GET /api/v3/search?q=<TraceQL>`: traces found by a query of the TraceQL
//! subset (docs/query-language.md), as OTLP JSON like the rest of api_v3,
//! with the spans each query matched and how far the search went.
//!
//! The search itself is [`crate::search`]; this module reads the parameters
//! and writes the answer.
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use spoor_query_params::{MAX_SEARCH_LIMIT, Params, rfc3339};

use super::ApiState;
use super::api_v3::V3Error;
use crate::search::Search;

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
    let found = crate::search::search(
        &s.reader,
        &Search {
            query: &query,
            start,
            end,
            limit,
            depth,
            max_spans: s.limits.spans,
        },
    )
    .await?;
    // the answer within --query.max-response-bytes too; the first match whole
    // each trace written once, as OTLP JSON, within --query.max-response-bytes
    // too (the first match whole)
    let mut response_limit_reached = found.span_budget_reached;
    let mut resource_spans: Vec<u8> = Vec::new();
    let mut matches = Vec::new();
    for (trace, selected) in &found.traces {
        let mut json = Vec::new();
        for rs in spoor_codec::otlp::spans_to_otlp(&trace.spans) {
            json.push(b',');
            serde_json::to_writer(&mut json, &rs).map_err(V3Error::internal)?;
        }
        if !matches.is_empty() && resource_spans.len() + json.len() > s.limits.bytes {
            response_limit_reached = true;
            break;
        }
        resource_spans.extend_from_slice(&json);
        matches.push(Matched {
            trace_id: format!("{:032x}", trace.spans[0].trace_id.0),
            span_ids: selected
                .iter()
                .map(|i| trace.spans[*i].span_id.to_string())
                .collect(),
        });
    }
    let progress = Progress {
        traces_returned: matches.len(),
        limit_reached: found.limit_reached(limit),
        response_limit_reached,
        candidates_read: found.candidates_read,
        search_depth: depth,
        complete: found.complete,
        start: rfc3339_text(start),
        end: rfc3339_text(end),
    };
    let mut body = b"{\"result\":{\"resourceSpans\":[".to_vec();
    body.extend_from_slice(resource_spans.get(1..).unwrap_or_default());
    body.extend_from_slice(b"]},\"matches\":");
    serde_json::to_writer(&mut body, &matches).map_err(V3Error::internal)?;
    body.extend_from_slice(b",\"search\":");
    serde_json::to_writer(&mut body, &progress).map_err(V3Error::internal)?;
    body.push(b'}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn rfc3339_text(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
