//! jaeger.thrift's Batch and the agent's `emitBatch` call, decoded straight
//! into model spans and encoded from them.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_model::time::unix_micros_i64;
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

use super::protocol::{
    BinaryReader, BinaryWriter, CompactReader, CompactWriter, MessageType, Reader, TType,
    ThriftError, Writer, read_list, read_struct,
};

/// The two protocols Jaeger clients use: compact on UDP 6831, binary on UDP
/// 6832 and HTTP 14268.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Compact,
    Binary,
}

/// Counters a Jaeger client reports about its own drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub full_queue_dropped_spans: i64,
    pub too_large_dropped_spans: i64,
    pub failed_to_emit_spans: i64,
}

#[derive(Debug, PartialEq)]
pub struct DecodedBatch {
    pub process: Arc<Process>,
    pub spans: Vec<Span>,
    pub seq_no: Option<i64>,
    pub stats: Option<ClientStats>,
}

// tag types of jaeger.thrift
const TAG_STRING: i32 = 0;
const TAG_DOUBLE: i32 = 1;
const TAG_BOOL: i32 = 2;
const TAG_LONG: i32 = 3;
const TAG_BINARY: i32 = 4;

fn unexpected(what: &'static str, value: impl ToString) -> ThriftError {
    ThriftError::Unexpected {
        what,
        value: value.to_string(),
    }
}

fn time_from_micros(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us.max(0) as u64)
}

fn read_tag<'a, R: Reader<'a>>(r: &mut R) -> Result<KeyValue, ThriftError> {
    let (mut key, mut v_type) = (String::new(), TAG_STRING);
    let (mut s, mut d, mut b, mut l, mut bin) = (None, None, None, None, None);
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::Binary) => key = r.read_string()?.to_string(),
            (2, TType::I32) => v_type = r.read_i32()?,
            (3, TType::Binary) => s = Some(r.read_string()?.to_string()),
            (4, TType::Double) => d = Some(r.read_double()?),
            (5, TType::Bool) => b = Some(r.read_bool()?),
            (6, TType::I64) => l = Some(r.read_i64()?),
            (7, TType::Binary) => bin = Some(r.read_binary()?.to_vec()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let value = match v_type {
        TAG_STRING => Value::String(s.unwrap_or_default()),
        TAG_DOUBLE => Value::Float64(d.unwrap_or_default()),
        TAG_BOOL => Value::Bool(b.unwrap_or_default()),
        TAG_LONG => Value::Int64(l.unwrap_or_default()),
        TAG_BINARY => Value::Binary(bin.unwrap_or_default()),
        other => return Err(unexpected("tag type", other)),
    };
    Ok(KeyValue::new(key, value))
}

fn read_tags<'a, R: Reader<'a>>(r: &mut R) -> Result<Vec<KeyValue>, ThriftError> {
    read_list(r, TType::Struct, read_tag)
}

fn read_log<'a, R: Reader<'a>>(r: &mut R) -> Result<Log, ThriftError> {
    let mut log = Log {
        timestamp: UNIX_EPOCH,
        fields: Vec::new(),
    };
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I64) => log.timestamp = time_from_micros(r.read_i64()?),
            (2, TType::List) => log.fields = read_tags(r)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(log)
}

fn read_span_ref<'a, R: Reader<'a>>(r: &mut R) -> Result<SpanRef, ThriftError> {
    let (mut ref_type, mut low, mut high, mut span) = (0, 0i64, 0i64, 0i64);
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I32) => ref_type = r.read_i32()?,
            (2, TType::I64) => low = r.read_i64()?,
            (3, TType::I64) => high = r.read_i64()?,
            (4, TType::I64) => span = r.read_i64()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(SpanRef {
        trace_id: TraceId::new(high as u64, low as u64),
        span_id: SpanId(span as u64),
        ref_type: match ref_type {
            0 => RefType::ChildOf,
            1 => RefType::FollowsFrom,
            other => return Err(unexpected("span reference type", other)),
        },
    })
}

fn read_span<'a, R: Reader<'a>>(r: &mut R) -> Result<Span, ThriftError> {
    let (mut low, mut high, mut parent) = (0i64, 0i64, 0i64);
    let mut span = Span {
        trace_id: TraceId(0),
        span_id: SpanId(0),
        operation_name: String::new(),
        references: Vec::new(),
        flags: 0,
        start_time: UNIX_EPOCH,
        duration: Duration::ZERO,
        tags: Vec::new(),
        logs: Vec::new(),
        process: Arc::default(),
        warnings: Vec::new(),
    };
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I64) => low = r.read_i64()?,
            (2, TType::I64) => high = r.read_i64()?,
            (3, TType::I64) => span.span_id = SpanId(r.read_i64()? as u64),
            (4, TType::I64) => parent = r.read_i64()?,
            (5, TType::Binary) => span.operation_name = r.read_string()?.to_string(),
            (6, TType::List) => span.references = read_list(r, TType::Struct, read_span_ref)?,
            (7, TType::I32) => span.flags = r.read_i32()? as u32,
            (8, TType::I64) => {
                let (t, warning) = spoor_model::time::time_from_micros(r.read_i64()?, "start time");
                span.start_time = t;
                span.warnings.extend(warning);
            }
            (9, TType::I64) => {
                let (d, warning) = spoor_model::time::duration_from_micros(r.read_i64()?);
                span.duration = d;
                span.warnings.extend(warning);
            }
            (10, TType::List) => span.tags = read_tags(r)?,
            (11, TType::List) => span.logs = read_list(r, TType::Struct, read_log)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    span.trace_id = TraceId::new(high as u64, low as u64);
    // Jaeger clients send the parent as a field; it becomes the first
    // reference unless a reference already names it
    if parent != 0 && !span.references.iter().any(|r| r.span_id.0 == parent as u64) {
        span.references.insert(
            0,
            SpanRef {
                trace_id: span.trace_id,
                span_id: SpanId(parent as u64),
                ref_type: RefType::ChildOf,
            },
        );
    }
    Ok(span)
}

fn read_process<'a, R: Reader<'a>>(r: &mut R) -> Result<Process, ThriftError> {
    let mut process = Process::default();
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::Binary) => process.service_name = r.read_string()?.to_string(),
            (2, TType::List) => process.tags = read_tags(r)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(process)
}

fn read_stats<'a, R: Reader<'a>>(r: &mut R) -> Result<ClientStats, ThriftError> {
    let mut s = ClientStats::default();
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I64) => s.full_queue_dropped_spans = r.read_i64()?,
            (2, TType::I64) => s.too_large_dropped_spans = r.read_i64()?,
            (3, TType::I64) => s.failed_to_emit_spans = r.read_i64()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(s)
}

fn read_batch<'a, R: Reader<'a>>(r: &mut R) -> Result<DecodedBatch, ThriftError> {
    let mut process = None;
    let mut spans = Vec::new();
    let (mut seq_no, mut stats) = (None, None);
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::Struct) => process = Some(read_process(r)?),
            (2, TType::List) => spans = read_list(r, TType::Struct, read_span)?,
            (3, TType::I64) => seq_no = Some(r.read_i64()?),
            (4, TType::Struct) => stats = Some(read_stats(r)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let process = Arc::new(process.ok_or_else(|| unexpected("batch", "no process"))?);
    for span in &mut spans {
        span.process = Arc::clone(&process);
    }
    Ok(DecodedBatch {
        process,
        spans,
        seq_no,
        stats,
    })
}

/// Decodes a bare `Batch` struct, as `POST /api/traces` carries it.
pub fn decode_batch(buf: &[u8], protocol: Protocol) -> Result<DecodedBatch, ThriftError> {
    match protocol {
        Protocol::Binary => read_batch(&mut BinaryReader::new(buf)),
        Protocol::Compact => read_batch(&mut CompactReader::new(buf)),
    }
}

fn read_emit_batch<'a, R: Reader<'a>>(r: &mut R) -> Result<DecodedBatch, ThriftError> {
    let header = r.read_message_begin()?;
    if header.name != "emitBatch" {
        return Err(unexpected("method", header.name));
    }
    let mut batch = None;
    read_struct(r, |r, t, id| {
        if (id, t) == (1, TType::Struct) {
            batch = Some(read_batch(r)?);
            return Ok(true);
        }
        Ok(false)
    })?;
    batch.ok_or_else(|| unexpected("emitBatch", "no batch argument"))
}

/// Decodes one agent datagram: an `Agent.emitBatch` call.
pub fn decode_emit_batch(buf: &[u8], protocol: Protocol) -> Result<DecodedBatch, ThriftError> {
    match protocol {
        Protocol::Binary => read_emit_batch(&mut BinaryReader::new(buf)),
        Protocol::Compact => read_emit_batch(&mut CompactReader::new(buf)),
    }
}

fn write_tag<W: Writer>(w: &mut W, kv: &KeyValue) {
    w.write_struct_begin();
    w.write_field_begin(TType::Binary, 1);
    w.write_string(&kv.key);
    w.write_field_begin(TType::I32, 2);
    match &kv.value {
        Value::String(s) => {
            w.write_i32(TAG_STRING);
            w.write_field_begin(TType::Binary, 3);
            w.write_string(s);
        }
        Value::Float64(f) => {
            w.write_i32(TAG_DOUBLE);
            w.write_field_begin(TType::Double, 4);
            w.write_double(*f);
        }
        Value::Bool(b) => {
            w.write_i32(TAG_BOOL);
            w.write_field_begin(TType::Bool, 5);
            w.write_bool(*b);
        }
        Value::Int64(i) => {
            w.write_i32(TAG_LONG);
            w.write_field_begin(TType::I64, 6);
            w.write_i64(*i);
        }
        Value::Binary(b) => {
            w.write_i32(TAG_BINARY);
            w.write_field_begin(TType::Binary, 7);
            w.write_binary(b);
        }
    }
    w.write_field_stop();
    w.write_struct_end();
}

fn write_tags<W: Writer>(w: &mut W, id: i16, tags: &[KeyValue]) {
    w.write_field_begin(TType::List, id);
    w.write_list_begin(TType::Struct, tags.len());
    for kv in tags {
        write_tag(w, kv);
    }
}

fn write_span<W: Writer>(w: &mut W, s: &Span) {
    w.write_struct_begin();
    w.write_field_begin(TType::I64, 1);
    w.write_i64(s.trace_id.low() as i64);
    w.write_field_begin(TType::I64, 2);
    w.write_i64(s.trace_id.high() as i64);
    w.write_field_begin(TType::I64, 3);
    w.write_i64(s.span_id.0 as i64);
    w.write_field_begin(TType::I64, 4);
    w.write_i64(0);
    w.write_field_begin(TType::Binary, 5);
    w.write_string(&s.operation_name);
    w.write_field_begin(TType::List, 6);
    w.write_list_begin(TType::Struct, s.references.len());
    for r in &s.references {
        w.write_struct_begin();
        w.write_field_begin(TType::I32, 1);
        w.write_i32(match r.ref_type {
            RefType::ChildOf => 0,
            RefType::FollowsFrom => 1,
        });
        w.write_field_begin(TType::I64, 2);
        w.write_i64(r.trace_id.low() as i64);
        w.write_field_begin(TType::I64, 3);
        w.write_i64(r.trace_id.high() as i64);
        w.write_field_begin(TType::I64, 4);
        w.write_i64(r.span_id.0 as i64);
        w.write_field_stop();
        w.write_struct_end();
    }
    w.write_field_begin(TType::I32, 7);
    w.write_i32(s.flags as i32);
    w.write_field_begin(TType::I64, 8);
    w.write_i64(unix_micros_i64(s.start_time));
    w.write_field_begin(TType::I64, 9);
    w.write_i64(s.duration.as_micros() as i64);
    write_tags(w, 10, &s.tags);
    w.write_field_begin(TType::List, 11);
    w.write_list_begin(TType::Struct, s.logs.len());
    for log in &s.logs {
        w.write_struct_begin();
        w.write_field_begin(TType::I64, 1);
        w.write_i64(unix_micros_i64(log.timestamp));
        write_tags(w, 2, &log.fields);
        w.write_field_stop();
        w.write_struct_end();
    }
    w.write_field_stop();
    w.write_struct_end();
}

fn write_batch<W: Writer>(w: &mut W, process: &Process, spans: &[Span]) {
    w.write_struct_begin();
    w.write_field_begin(TType::Struct, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::Binary, 1);
    w.write_string(&process.service_name);
    write_tags(w, 2, &process.tags);
    w.write_field_stop();
    w.write_struct_end();
    w.write_field_begin(TType::List, 2);
    w.write_list_begin(TType::Struct, spans.len());
    for s in spans {
        write_span(w, s);
    }
    w.write_field_stop();
    w.write_struct_end();
}

/// Encodes a bare `Batch` struct (the body of `POST /api/traces`). Times are
/// truncated to microseconds, Thrift's unit; parents travel as references.
pub fn encode_batch(process: &Process, spans: &[Span], protocol: Protocol) -> Vec<u8> {
    fn with<W: Writer + Default>(process: &Process, spans: &[Span]) -> Vec<u8> {
        let mut w = W::default();
        write_batch(&mut w, process, spans);
        w.into_bytes()
    }
    match protocol {
        Protocol::Binary => with::<BinaryWriter>(process, spans),
        Protocol::Compact => with::<CompactWriter>(process, spans),
    }
}

/// Encodes an `Agent.emitBatch` oneway call, one UDP datagram's worth.
pub fn encode_emit_batch(
    process: &Process,
    spans: &[Span],
    protocol: Protocol,
    seq_id: i32,
) -> Vec<u8> {
    fn with<W: Writer + Default>(process: &Process, spans: &[Span], seq_id: i32) -> Vec<u8> {
        let mut w = W::default();
        w.write_message_begin("emitBatch", MessageType::Oneway, seq_id);
        w.write_struct_begin();
        w.write_field_begin(TType::Struct, 1);
        write_batch(&mut w, process, spans);
        w.write_field_stop();
        w.write_struct_end();
        w.into_bytes()
    }
    match protocol {
        Protocol::Binary => with::<BinaryWriter>(process, spans, seq_id),
        Protocol::Compact => with::<CompactWriter>(process, spans, seq_id),
    }
}
