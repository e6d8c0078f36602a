use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{SpanId, TraceId};

/// A tag or log-field value: the five types Jaeger's model carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Binary(Vec<u8>),
}

impl Value {
    /// Bytes the value holds outside itself.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::String(s) => s.len(),
            Value::Binary(b) => b.len(),
            Value::Bool(_) | Value::Int64(_) | Value::Float64(_) => 0,
        }
    }

    /// The value as text, as Jaeger renders it for tag matching: numbers in
    /// decimal, booleans as `true`/`false`, binary as lowercase hex.
    pub fn as_string(&self) -> Cow<'_, str> {
        match self {
            Value::String(s) => Cow::Borrowed(s),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::Int64(i) => Cow::Owned(i.to_string()),
            Value::Float64(f) => Cow::Owned(f.to_string()),
            Value::Binary(b) => Cow::Owned(crate::hex::encode(b)),
        }
    }
}

/// A tag key: held inline up to 23 bytes (nearly every key), so a span's
/// keys sit in its tag vector rather than one allocation each.
pub type Key = smol_str::SmolStr;

#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: Key,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: impl Into<Key>, value: Value) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }
    pub fn string(key: impl Into<Key>, value: impl Into<String>) -> Self {
        Self::new(key, Value::String(value.into()))
    }
}

/// The emitting process: its service name and tags (host, client version, ...).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefType {
    ChildOf,
    FollowsFrom,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::ChildOf => "CHILD_OF",
            RefType::FollowsFrom => "FOLLOWS_FROM",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub ref_type: RefType,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    pub timestamp: SystemTime,
    pub fields: Vec<KeyValue>,
}

/// The role of a span in an RPC or messaging exchange, from its `span.kind` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The `span.kind` tag value; empty for unspecified.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Reads a `span.kind` value; anything unknown is unspecified.
    pub fn parse(s: &str) -> SpanKind {
        match s {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// The tag key that carries the span kind in Jaeger's model.
pub const SPAN_KIND_TAG: &str = "span.kind";

#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub operation_name: String,
    pub references: Vec<SpanRef>,
    pub flags: u32,
    pub start_time: SystemTime,
    pub duration: Duration,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    /// Shared by all spans of one batch or resource, so a stored span does not
    /// carry its own copy of the process tags.
    pub process: Arc<Process>,
    pub warnings: Vec<String>,
}

impl Span {
    /// The first reference (CHILD_OF or FOLLOWS_FROM) into the same trace, as
    /// Jaeger defines the parent.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.references
            .iter()
            .find(|r| r.trace_id == self.trace_id)
            .map(|r| r.span_id)
    }

    pub fn tag(&self, key: &str) -> Option<&Value> {
        self.tags
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    pub fn kind(&self) -> SpanKind {
        match self.tag(SPAN_KIND_TAG) {
            Some(Value::String(s)) => SpanKind::parse(s),
            _ => SpanKind::Unspecified,
        }
    }

    /// True when the span carries `error=true` (bool or string), Jaeger's mark.
    pub fn is_error(&self) -> bool {
        match self.tag("error") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    pub fn end_time(&self) -> SystemTime {
        self.start_time + self.duration
    }

    /// About how much memory the span takes (its process is shared and not
    /// counted): what bounds by bytes, such as the collector's queue, charge.
    pub fn estimated_bytes(&self) -> usize {
        use std::mem::size_of;
        let kvs = |kvs: &[KeyValue]| -> usize {
            kvs.iter()
                .map(|kv| {
                    let key = if kv.key.is_heap_allocated() {
                        kv.key.len()
                    } else {
                        0
                    };
                    size_of::<KeyValue>() + key + kv.value.heap_bytes()
                })
                .sum()
        };
        size_of::<Span>()
            + self.operation_name.len()
            + self.references.len() * size_of::<SpanRef>()
            + kvs(&self.tags)
            + self
                .logs
                .iter()
                .map(|log| size_of::<Log>() + kvs(&log.fields))
                .sum::<usize>()
            + self
                .warnings
                .iter()
                .map(|w| size_of::<String>() + w.len())
                .sum::<usize>()
    }
}

/// The spans of one trace as stored, in no particular order, plus warnings
/// about the trace as a whole.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Trace {
    pub spans: Vec<Span>,
    pub warnings: Vec<String>,
}

impl Trace {
    /// The earliest span start, or None for an empty trace.
    pub fn start_time(&self) -> Option<SystemTime> {
        self.spans.iter().map(|s| s.start_time).min()
    }
}

/// A call edge between two services, aggregated over a time window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_jaeger_does() {
        assert_eq!(Value::Float64(72.5).as_string(), "72.5");
        assert_eq!(Value::Int64(-3).as_string(), "-3");
        assert_eq!(Value::Bool(true).as_string(), "true");
        assert_eq!(Value::Binary(vec![0, 0x30, 0xff]).as_string(), "0030ff");
    }

    #[test]
    fn parent_is_first_reference_into_the_same_trace() {
        let r = |t, s, ref_type| SpanRef {
            trace_id: TraceId(t),
            span_id: SpanId(s),
            ref_type,
        };
        let span = Span {
            trace_id: TraceId(1),
            span_id: SpanId(4),
            operation_name: "op".into(),
            references: vec![
                r(0xff, 0xff, RefType::ChildOf),
                r(1, 2, RefType::FollowsFrom),
            ],
            flags: 0,
            start_time: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            tags: vec![KeyValue::string(SPAN_KIND_TAG, "server")],
            logs: vec![],
            process: Arc::new(Process::default()),
            warnings: vec![],
        };
        assert_eq!(span.parent_span_id(), Some(SpanId(2)));
        assert_eq!(span.kind(), SpanKind::Server);
        assert!(!span.is_error());
    }
}
