//! The memory store's own span records: symbols for repeated strings,
//! nanosecond integers for times, boxed slices instead of vectors. About a
//! third the size of a model span; converted back to the model on read.
use std::mem::size_of;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use spoor_model::{KeyValue, Log, Process, Span, SpanId, SpanRef, TraceId, Value};

use crate::intern::{Interner, Sym};
use spoor_model::time::unix_nanos;

/// The type of a stored value; the value itself is packed into 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bits` is a symbol.
    Str,
    Bool,
    Int64,
    Float64,
    /// `bits` is the symbol of the bytes in lowercase hex, which is also
    /// how Jaeger renders binary values for tag matching.
    Binary,
}

/// 16 bytes where a model key-value takes 56 plus two heap strings.
#[derive(Clone, Copy)]
pub struct StoredKeyValue {
    key: Sym,
    kind: Kind,
    bits: u64,
}

pub struct StoredLog {
    timestamp_ns: u64,
    fields: Box<[StoredKeyValue]>,
}

pub struct StoredSpan {
    pub span_id: SpanId,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub flags: u32,
    pub operation: Sym,
    pub references: Box<[SpanRef]>,
    tags: Box<[StoredKeyValue]>,
    logs: Box<[StoredLog]>,
    pub process: Arc<Process>,
    warnings: Box<[Box<str>]>,
}

fn intern_kvs(kvs: &[KeyValue], strings: &mut Interner) -> Box<[StoredKeyValue]> {
    kvs.iter()
        .map(|kv| {
            let (kind, bits) = match &kv.value {
                Value::String(s) => (Kind::Str, strings.intern(s).to_bits()),
                Value::Bool(b) => (Kind::Bool, *b as u64),
                Value::Int64(i) => (Kind::Int64, *i as u64),
                Value::Float64(f) => (Kind::Float64, f.to_bits()),
                Value::Binary(_) => (
                    Kind::Binary,
                    strings.intern(&kv.value.as_string()).to_bits(),
                ),
            };
            StoredKeyValue {
                key: strings.intern(&kv.key),
                kind,
                bits,
            }
        })
        .collect()
}

fn release_kvs(kvs: &[StoredKeyValue], strings: &mut Interner) {
    for kv in kvs {
        strings.release(kv.key);
        if matches!(kv.kind, Kind::Str | Kind::Binary) {
            strings.release(Sym::from_bits(kv.bits));
        }
    }
}

fn resolve_kvs(kvs: &[StoredKeyValue], strings: &Interner) -> Vec<KeyValue> {
    kvs.iter()
        .map(|kv| KeyValue {
            key: strings.resolve(kv.key).into(),
            value: match kv.kind {
                Kind::Str => Value::String(strings.resolve(Sym::from_bits(kv.bits)).to_string()),
                Kind::Bool => Value::Bool(kv.bits != 0),
                Kind::Int64 => Value::Int64(kv.bits as i64),
                Kind::Float64 => Value::Float64(f64::from_bits(kv.bits)),
                Kind::Binary => Value::Binary(
                    spoor_model::hex::decode(strings.resolve(Sym::from_bits(kv.bits)))
                        .unwrap_or_default(),
                ),
            },
        })
        .collect()
}

fn kvs_bytes(kvs: &[StoredKeyValue]) -> usize {
    std::mem::size_of_val(kvs)
}

impl StoredSpan {
    pub fn new(span: &Span, process: Arc<Process>, strings: &mut Interner) -> Self {
        StoredSpan {
            span_id: span.span_id,
            start_ns: unix_nanos(span.start_time),
            duration_ns: span.duration.as_nanos() as u64,
            flags: span.flags,
            operation: strings.intern(&span.operation_name),
            references: span.references.as_slice().into(),
            tags: intern_kvs(&span.tags, strings),
            logs: span
                .logs
                .iter()
                .map(|l| StoredLog {
                    timestamp_ns: unix_nanos(l.timestamp),
                    fields: intern_kvs(&l.fields, strings),
                })
                .collect(),
            process,
            warnings: span.warnings.iter().map(|w| w.as_str().into()).collect(),
        }
    }

    /// Gives back every string reference this record holds.
    pub fn release(&self, strings: &mut Interner) {
        strings.release(self.operation);
        release_kvs(&self.tags, strings);
        for log in &self.logs {
            release_kvs(&log.fields, strings);
        }
    }

    pub fn to_span(&self, trace_id: TraceId, strings: &Interner) -> Span {
        Span {
            trace_id,
            span_id: self.span_id,
            operation_name: strings.resolve(self.operation).to_string(),
            references: self.references.to_vec(),
            flags: self.flags,
            start_time: UNIX_EPOCH + Duration::from_nanos(self.start_ns),
            duration: Duration::from_nanos(self.duration_ns),
            tags: resolve_kvs(&self.tags, strings),
            logs: self
                .logs
                .iter()
                .map(|l| Log {
                    timestamp: UNIX_EPOCH + Duration::from_nanos(l.timestamp_ns),
                    fields: resolve_kvs(&l.fields, strings),
                })
                .collect(),
            process: Arc::clone(&self.process),
            warnings: self.warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// Estimated heap bytes of this record, strings in the interner aside.
    pub fn bytes(&self) -> usize {
        size_of::<StoredSpan>()
            + self.references.len() * size_of::<SpanRef>()
            + kvs_bytes(&self.tags)
            + self
                .logs
                .iter()
                .map(|l| size_of::<StoredLog>() + kvs_bytes(&l.fields))
                .sum::<usize>()
            + self
                .warnings
                .iter()
                .map(|w| size_of::<Box<str>>() + w.len())
                .sum::<usize>()
    }

    /// Whether some tag or log field has `key` with the textual value `value`
    /// (Jaeger's rendering: decimal numbers, true/false, hex for binary).
    pub fn has_tag(&self, key: Sym, value: &TagValue) -> bool {
        let hit = |kvs: &[StoredKeyValue]| kvs.iter().any(|kv| kv.key == key && value.matches(kv));
        hit(&self.tags) || self.logs.iter().any(|l| hit(&l.fields))
    }
}

/// A query tag value, prepared once per shard.
pub struct TagValue<'a> {
    pub text: &'a str,
    /// The value's symbol, when some stored string equals it.
    pub sym: Option<Sym>,
}

impl TagValue<'_> {
    fn matches(&self, kv: &StoredKeyValue) -> bool {
        match kv.kind {
            Kind::Str | Kind::Binary => self.sym == Some(Sym::from_bits(kv.bits)),
            Kind::Bool => self.text == if kv.bits != 0 { "true" } else { "false" },
            Kind::Int64 => Value::Int64(kv.bits as i64).as_string() == self.text,
            Kind::Float64 => Value::Float64(f64::from_bits(kv.bits)).as_string() == self.text,
        }
    }
}

/// Heap bytes of a process, counted once per shard that first stores it.
pub fn process_bytes(p: &Process) -> usize {
    size_of::<Process>()
        + p.service_name.len()
        + p.tags
            .iter()
            .map(|kv| {
                size_of::<KeyValue>()
                    + kv.key.len()
                    + match &kv.value {
                        Value::String(s) => s.len(),
                        Value::Binary(b) => b.len(),
                        _ => 0,
                    }
            })
            .sum::<usize>()
}
