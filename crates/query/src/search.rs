//! TraceQL search on any store: the store's own search narrows the
//! candidates (see [`spoor_traceql::plan`]); each candidate is read and the
//! query evaluated on the whole trace, until `limit` traces matched, the
//! span budget is spent, or `depth` candidates were read.
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use spoor_model::Trace;
use spoor_storage::{SpanReader, StorageError, TraceQuery};
use spoor_traceql::Query;

use crate::read::found_traces;

/// One search: the query, the window of trace start times, and its bounds.
pub struct Search<'a> {
    pub query: &'a Query,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Traces returned at most.
    pub limit: usize,
    /// Candidate traces read at most.
    pub depth: usize,
    /// Spans returned at most; the first match is returned whole.
    pub max_spans: usize,
}

/// What a search found, and how far it went.
pub struct Found {
    /// Each matching trace with the indices of the spans the query selected.
    pub traces: Vec<(Trace, Vec<usize>)>,
    /// Candidates read and evaluated.
    pub candidates_read: usize,
    /// True when a match was left out for `max_spans`.
    pub span_budget_reached: bool,
    /// True when every candidate the store had in the window was evaluated.
    pub complete: bool,
}

impl Found {
    pub fn limit_reached(&self, limit: usize) -> bool {
        self.traces.len() == limit
    }
}

pub async fn search(reader: &Arc<dyn SpanReader>, s: &Search<'_>) -> Result<Found, StorageError> {
    let plan =
        spoor_traceql::plan(s.query).map_err(|e| StorageError::InvalidQuery(e.to_string()))?;
    let candidates = TraceQuery {
        service_name: plan.service,
        operation_name: plan.operation,
        tags: plan.tags,
        start_time_min: s.start,
        start_time_max: s.end,
        duration_min: plan.duration_min,
        duration_max: plan.duration_max,
        num_traces: s.depth,
    };
    let ids = reader.find_trace_ids(&candidates).await?;
    let in_window = ids.len();
    let mut traces = std::pin::pin!(found_traces(Arc::clone(reader), ids));
    let mut found = Found {
        traces: Vec::new(),
        candidates_read: 0,
        span_budget_reached: false,
        complete: false,
    };
    let mut spans = 0;
    while let Some(trace) = traces.next().await {
        let trace = trace?;
        found.candidates_read += 1;
        let selected = s.query.matches(&trace);
        if selected.is_empty() {
            continue;
        }
        if !found.traces.is_empty() && spans + trace.spans.len() > s.max_spans {
            found.span_budget_reached = true;
            break;
        }
        spans += trace.spans.len();
        found.traces.push((trace, selected));
        if found.traces.len() == s.limit {
            break;
        }
    }
    found.complete = in_window < s.depth && found.candidates_read == in_window;
    Ok(found)
}
