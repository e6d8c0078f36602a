//! The head: spans written since the last cut, held as the model spans the
//! writers handed over (moved in, not copied), sharded by trace id. It lives
//! for minutes and at most `--embedded.head-bytes`, so it keeps spans as
//! they came rather than packing them as the memory store does; its spans go
//! to a block as they are.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use spoor_model::{Span, TraceId};
use spoor_storage::{DependencyCounter, Operation, OperationQuery, TraceQuery, dedupe_spans};

const SHARDS: usize = 16;

struct HeadTrace {
    spans: Vec<Span>,
    /// The earliest span start, for search order.
    start: SystemTime,
}

type Shard = HashMap<TraceId, HeadTrace, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct Head {
    shards: [RwLock<Shard>; SHARDS],
    /// service -> its (operation, kind) pairs
    operations: RwLock<BTreeMap<String, BTreeSet<Operation>>>,
    spans: AtomicU64,
    bytes: AtomicU64,
}

fn shard_of(id: TraceId) -> usize {
    ((id.low() ^ id.high()).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize % SHARDS
}

impl Head {
    /// Spans held, and their estimated bytes.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.spans.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    pub fn insert(&self, spans: Vec<Span>) {
        self.index_operations(&spans);
        let bytes: usize = spans.iter().map(Span::estimated_bytes).sum();
        self.spans.fetch_add(spans.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let mut by_shard: [Vec<Span>; SHARDS] = Default::default();
        for span in spans {
            by_shard[shard_of(span.trace_id)].push(span);
        }
        for (shard, spans) in self.shards.iter().zip(by_shard) {
            if spans.is_empty() {
                continue;
            }
            let mut shard = shard.write().expect("head lock poisoned");
            for span in spans {
                let trace = shard.entry(span.trace_id).or_insert_with(|| HeadTrace {
                    spans: Vec::new(),
                    start: span.start_time,
                });
                trace.start = trace.start.min(span.start_time);
                trace.spans.push(span);
            }
        }
    }

    fn index_operations(&self, spans: &[Span]) {
        // a service has few operations: a scan, without building a key
        let known = |ops: &BTreeMap<String, BTreeSet<Operation>>, s: &Span| {
            ops.get(&s.process.service_name).is_some_and(|o| {
                let kind = s.kind();
                o.iter()
                    .any(|op| op.span_kind == kind && op.name == s.operation_name)
            })
        };
        let new: Vec<&Span> = {
            let ops = self.operations.read().expect("head lock poisoned");
            spans.iter().filter(|s| !known(&ops, s)).collect()
        };
        if new.is_empty() {
            return;
        }
        let mut ops = self.operations.write().expect("head lock poisoned");
        for s in new {
            ops.entry(s.process.service_name.clone())
                .or_default()
                .insert(Operation {
                    name: s.operation_name.clone(),
                    span_kind: s.kind(),
                });
        }
    }

    /// The spans of trace `id`, exact duplicates removed; empty when none.
    pub fn trace(&self, id: TraceId) -> Vec<Span> {
        let shard = self.shards[shard_of(id)]
            .read()
            .expect("head lock poisoned");
        let mut spans = shard.get(&id).map(|t| t.spans.clone()).unwrap_or_default();
        drop(shard);
        dedupe_spans(&mut spans);
        spans
    }

    /// Calls `visit` with each span of trace `id`, in place.
    pub fn visit_trace(&self, id: TraceId, mut visit: impl FnMut(&Span)) {
        let shard = self.shards[shard_of(id)]
            .read()
            .expect("head lock poisoned");
        if let Some(t) = shard.get(&id) {
            t.spans.iter().for_each(&mut visit);
        }
    }

    pub fn trace_start(&self, id: TraceId) -> Option<SystemTime> {
        let shard = self.shards[shard_of(id)]
            .read()
            .expect("head lock poisoned");
        shard.get(&id).map(|t| t.start)
    }

    /// Every trace id held, ascending.
    pub fn trace_ids(&self) -> Vec<TraceId> {
        let mut ids: Vec<TraceId> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.read().expect("head lock poisoned");
                s.keys().copied().collect::<Vec<_>>()
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The newest `limit` traces with a span matching `q`, with their starts.
    pub fn search(&self, q: &TraceQuery, limit: usize) -> Vec<(TraceId, SystemTime)> {
        let mut found: Vec<(SystemTime, TraceId)> = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().expect("head lock poisoned");
            for (id, trace) in shard.iter() {
                if trace
                    .spans
                    .iter()
                    .any(|s| spoor_storage::span_matches(s, q))
                {
                    found.push((trace.start, *id));
                }
            }
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.truncate(limit);
        found.into_iter().map(|(start, id)| (id, start)).collect()
    }

    pub fn services(&self) -> Vec<String> {
        let ops = self.operations.read().expect("head lock poisoned");
        ops.keys().cloned().collect()
    }

    pub fn operations(&self, q: &OperationQuery) -> Vec<Operation> {
        let ops = self.operations.read().expect("head lock poisoned");
        ops.get(&q.service_name)
            .into_iter()
            .flatten()
            .filter(|op| q.span_kind.is_none_or(|k| k == op.span_kind))
            .cloned()
            .collect()
    }

    /// Counts the calls of spans that started within `[start, end]`.
    pub fn add_calls(&self, counter: &mut DependencyCounter, start: SystemTime, end: SystemTime) {
        for shard in &self.shards {
            let shard = shard.read().expect("head lock poisoned");
            for trace in shard.values() {
                counter.add_trace(&trace.spans, start, end);
            }
        }
    }
}
