//! The api_v2 protobuf encoding of model spans, written straight from the
//! model: the same bytes as encoding [`crate::span_to_proto`]'s messages,
//! without building them (no copy of every string, no second pass to drop
//! them). The write-ahead log of the embedded store encodes every span it
//! takes this way; a test holds the two encodings equal.
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanRef, Value};

use crate::api_v2;
use crate::convert::{duration_to_proto, system_time_to_proto};

fn key_len(tag: u32) -> usize {
    prost::encoding::key_len(tag)
}

fn bytes_field_len(tag: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }
}

fn put_bytes_field(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.is_empty() {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
}

fn varint_field_len(tag: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(v)
    }
}

fn put_varint_field(tag: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(v, out);
    }
}

/// A field holding a message of `len` bytes (present even when empty).
fn message_field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_message_header(tag: u32, len: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

fn kv_len(kv: &KeyValue) -> usize {
    let value = match &kv.value {
        Value::String(s) => bytes_field_len(3, s.len()),
        Value::Bool(b) => varint_field_len(2, 1) + varint_field_len(4, *b as u64),
        Value::Int64(i) => varint_field_len(2, 2) + varint_field_len(5, *i as u64),
        Value::Float64(f) => varint_field_len(2, 3) + if *f != 0.0 { key_len(6) + 8 } else { 0 },
        Value::Binary(b) => varint_field_len(2, 4) + bytes_field_len(7, b.len()),
    };
    bytes_field_len(1, kv.key.len()) + value
}

fn put_kv(kv: &KeyValue, out: &mut Vec<u8>) {
    put_bytes_field(1, kv.key.as_bytes(), out);
    match &kv.value {
        Value::String(s) => put_bytes_field(3, s.as_bytes(), out),
        Value::Bool(b) => {
            put_varint_field(2, 1, out);
            put_varint_field(4, *b as u64, out);
        }
        Value::Int64(i) => {
            put_varint_field(2, 2, out);
            put_varint_field(5, *i as u64, out);
        }
        Value::Float64(f) => {
            put_varint_field(2, 3, out);
            if *f != 0.0 {
                encode_key(6, WireType::SixtyFourBit, out);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Value::Binary(b) => {
            put_varint_field(2, 4, out);
            put_bytes_field(7, b, out);
        }
    }
}

fn kvs_len(tag: u32, kvs: &[KeyValue]) -> usize {
    kvs.iter()
        .map(|kv| message_field_len(tag, kv_len(kv)))
        .sum()
}

fn put_kvs(tag: u32, kvs: &[KeyValue], out: &mut Vec<u8>) {
    for kv in kvs {
        put_message_header(tag, kv_len(kv), out);
        put_kv(kv, out);
    }
}

/// Timestamp and Duration share their layout: seconds = 1, nanos = 2.
fn seconds_nanos_len(seconds: i64, nanos: i32) -> usize {
    varint_field_len(1, seconds as u64) + varint_field_len(2, nanos as i64 as u64)
}

fn put_seconds_nanos(tag: u32, seconds: i64, nanos: i32, out: &mut Vec<u8>) {
    put_message_header(tag, seconds_nanos_len(seconds, nanos), out);
    put_varint_field(1, seconds as u64, out);
    put_varint_field(2, nanos as i64 as u64, out);
}

fn ref_type(r: &SpanRef) -> u64 {
    match r.ref_type {
        RefType::ChildOf => api_v2::SpanRefType::ChildOf as u64,
        RefType::FollowsFrom => api_v2::SpanRefType::FollowsFrom as u64,
    }
}

fn ref_len(_: &SpanRef, r_type: u64) -> usize {
    bytes_field_len(1, 16) + bytes_field_len(2, 8) + varint_field_len(3, r_type)
}

fn log_len(log: &Log) -> usize {
    let t = system_time_to_proto(log.timestamp);
    message_field_len(1, seconds_nanos_len(t.seconds, t.nanos)) + kvs_len(2, &log.fields)
}

fn process_len(p: &Process) -> usize {
    bytes_field_len(1, p.service_name.len()) + kvs_len(2, &p.tags)
}

fn span_len(span: &Span) -> usize {
    let start = system_time_to_proto(span.start_time);
    let duration = duration_to_proto(span.duration);
    bytes_field_len(1, 16)
        + bytes_field_len(2, 8)
        + bytes_field_len(3, span.operation_name.len())
        + span
            .references
            .iter()
            .map(|r| message_field_len(4, ref_len(r, ref_type(r))))
            .sum::<usize>()
        + varint_field_len(5, span.flags as u64)
        + message_field_len(6, seconds_nanos_len(start.seconds, start.nanos))
        + message_field_len(7, seconds_nanos_len(duration.seconds, duration.nanos))
        + kvs_len(8, &span.tags)
        + span
            .logs
            .iter()
            .map(|l| message_field_len(9, log_len(l)))
            .sum::<usize>()
        + message_field_len(10, process_len(&span.process))
        + span
            .warnings
            .iter()
            .map(|w| key_len(12) + encoded_len_varint(w.len() as u64) + w.len())
            .sum::<usize>()
}

fn put_span(span: &Span, out: &mut Vec<u8>) {
    put_bytes_field(1, &span.trace_id.to_bytes(), out);
    put_bytes_field(2, &span.span_id.to_bytes(), out);
    put_bytes_field(3, span.operation_name.as_bytes(), out);
    for r in &span.references {
        let r_type = ref_type(r);
        put_message_header(4, ref_len(r, r_type), out);
        put_bytes_field(1, &r.trace_id.to_bytes(), out);
        put_bytes_field(2, &r.span_id.to_bytes(), out);
        put_varint_field(3, r_type, out);
    }
    put_varint_field(5, span.flags as u64, out);
    let start = system_time_to_proto(span.start_time);
    put_seconds_nanos(6, start.seconds, start.nanos, out);
    let duration = duration_to_proto(span.duration);
    put_seconds_nanos(7, duration.seconds, duration.nanos, out);
    put_kvs(8, &span.tags, out);
    for log in &span.logs {
        put_message_header(9, log_len(log), out);
        let t = system_time_to_proto(log.timestamp);
        put_seconds_nanos(1, t.seconds, t.nanos, out);
        put_kvs(2, &log.fields, out);
    }
    put_message_header(10, process_len(&span.process), out);
    put_bytes_field(1, span.process.service_name.as_bytes(), out);
    put_kvs(2, &span.process.tags, out);
    for w in &span.warnings {
        encode_key(12, WireType::LengthDelimited, out);
        encode_varint(w.len() as u64, out);
        out.extend_from_slice(w.as_bytes());
    }
}

/// The bytes of an api_v2 `Batch` holding `spans`, each with its process
/// embedded: what `Batch { spans: spans.map(span_to_proto), process: None }`
/// encodes to.
pub fn encode_batch(spans: &[Span]) -> Vec<u8> {
    let lens: Vec<usize> = spans.iter().map(span_len).collect();
    let total: usize = lens.iter().map(|l| message_field_len(1, *l)).sum();
    let mut out = Vec::with_capacity(total);
    for (span, len) in spans.iter().zip(lens) {
        put_message_header(1, len, &mut out);
        put_span(span, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use prost::Message;
    use spoor_model::{SpanId, TraceId};

    use super::*;

    fn via_messages(spans: &[Span]) -> Vec<u8> {
        api_v2::Batch {
            spans: spans.iter().map(crate::span_to_proto).collect(),
            process: None,
        }
        .encode_to_vec()
    }

    #[test]
    fn encodes_exactly_as_the_messages_do() {
        let process = Arc::new(Process {
            service_name: "svc".into(),
            tags: vec![
                KeyValue::string("host", "h"),
                KeyValue::new("pid", Value::Int64(-7)),
            ],
        });
        let span = Span {
            trace_id: TraceId::new(1, 2),
            span_id: SpanId(3),
            operation_name: "op".into(),
            references: vec![
                SpanRef {
                    trace_id: TraceId::new(1, 2),
                    span_id: SpanId(4),
                    ref_type: RefType::ChildOf,
                },
                SpanRef {
                    trace_id: TraceId(9),
                    span_id: SpanId(0),
                    ref_type: RefType::FollowsFrom,
                },
            ],
            flags: 1,
            start_time: UNIX_EPOCH + Duration::new(1_700_000_000, 123),
            duration: Duration::from_micros(2500),
            tags: vec![
                KeyValue::string("s", ""),
                KeyValue::new("b", Value::Bool(false)),
                KeyValue::new("t", Value::Bool(true)),
                KeyValue::new("i", Value::Int64(0)),
                KeyValue::new("f", Value::Float64(0.0)),
                KeyValue::new("g", Value::Float64(-1.5)),
                KeyValue::new("x", Value::Binary(vec![])),
                KeyValue::new("y", Value::Binary(vec![1, 2])),
                KeyValue::string("", "no key"),
            ],
            logs: vec![Log {
                timestamp: UNIX_EPOCH,
                fields: vec![KeyValue::string("event", "e")],
            }],
            process,
            warnings: vec!["w".into(), String::new()],
        };
        let mut bare = span.clone();
        bare.flags = 0;
        bare.duration = Duration::ZERO;
        bare.references.clear();
        bare.tags.clear();
        bare.logs.clear();
        bare.warnings.clear();
        bare.process = Arc::new(Process::default());
        for spans in [vec![], vec![span.clone()], vec![span, bare]] {
            assert_eq!(encode_batch(&spans), via_messages(&spans));
        }
    }
}
