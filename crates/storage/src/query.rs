use std::time::{Duration, SystemTime};

use spoor_model::{KeyValue, Span, SpanKind};

/// Jaeger's default search depth when a query gives none.
pub const DEFAULT_NUM_TRACES: usize = 100;

/// A trace search. A trace matches when at least one of its spans satisfies
/// every given condition at once: its process's service is `service_name`, its
/// operation is `operation_name` (when given), it started within
/// `[start_time_min, start_time_max]`, its duration is within the given bounds
/// (inclusive), and every tag in `tags` is found, by key and textual value, in
/// the span's tags, its process's tags or one of its log fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceQuery {
    pub service_name: String,
    pub operation_name: Option<String>,
    pub tags: Vec<(String, String)>,
    pub start_time_min: SystemTime,
    pub start_time_max: SystemTime,
    pub duration_min: Option<Duration>,
    pub duration_max: Option<Duration>,
    /// How many traces to return at most; 0 means [`DEFAULT_NUM_TRACES`].
    pub num_traces: usize,
}

impl TraceQuery {
    pub fn limit(&self) -> usize {
        if self.num_traces == 0 {
            DEFAULT_NUM_TRACES
        } else {
            self.num_traces
        }
    }

    /// Checks what every backend requires of a query.
    pub fn validate(&self) -> Result<(), crate::StorageError> {
        let invalid = |m: &str| Err(crate::StorageError::InvalidQuery(m.to_string()));
        if self.service_name.is_empty() {
            return invalid("service name is required");
        }
        if self.start_time_min > self.start_time_max {
            return invalid("start time minimum is after the maximum");
        }
        if let (Some(min), Some(max)) = (self.duration_min, self.duration_max)
            && min > max
        {
            return invalid("duration minimum is greater than the maximum");
        }
        Ok(())
    }
}

/// The reference semantics of one span against a [`TraceQuery`], for backends
/// that filter spans in process.
pub fn span_matches(span: &Span, q: &TraceQuery) -> bool {
    span.process.service_name == q.service_name
        && q.operation_name
            .as_ref()
            .is_none_or(|op| &span.operation_name == op)
        && span.start_time >= q.start_time_min
        && span.start_time <= q.start_time_max
        && q.duration_min.is_none_or(|d| span.duration >= d)
        && q.duration_max.is_none_or(|d| span.duration <= d)
        && q.tags.iter().all(|(k, v)| has_tag(span, k, v))
}

fn has_tag(span: &Span, key: &str, value: &str) -> bool {
    let hit = |kvs: &[KeyValue]| {
        kvs.iter()
            .any(|kv| kv.key == key && kv.value.as_string() == value)
    };
    hit(&span.tags) || hit(&span.process.tags) || span.logs.iter().any(|l| hit(&l.fields))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationQuery {
    pub service_name: String,
    /// `None` for every kind.
    pub span_kind: Option<SpanKind>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub name: String,
    pub span_kind: SpanKind,
}
