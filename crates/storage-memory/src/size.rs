//! Heap-use estimates for the byte budget: struct sizes plus owned buffers.
//! Allocator overhead is not counted, so real use runs somewhat higher.
use std::mem::size_of;

use spoor_model::{KeyValue, Log, Process, Span, SpanRef, Value};

fn kv_bytes(kv: &KeyValue) -> usize {
    size_of::<KeyValue>()
        + kv.key.len()
        + match &kv.value {
            Value::String(s) => s.len(),
            Value::Binary(b) => b.len(),
            _ => 0,
        }
}

fn kvs_bytes(kvs: &[KeyValue]) -> usize {
    kvs.iter().map(kv_bytes).sum()
}

pub fn process_bytes(p: &Process) -> usize {
    size_of::<Process>() + p.service_name.len() + kvs_bytes(&p.tags)
}

pub fn span_bytes(s: &Span) -> usize {
    size_of::<Span>()
        + s.operation_name.len()
        + s.references.len() * size_of::<SpanRef>()
        + kvs_bytes(&s.tags)
        + s.logs
            .iter()
            .map(|l| size_of::<Log>() + kvs_bytes(&l.fields))
            .sum::<usize>()
        + s.warnings
            .iter()
            .map(|w| size_of::<String>() + w.len())
            .sum::<usize>()
}
