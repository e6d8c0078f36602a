//! A bounded in-memory span store, the default of the all-in-one.
//!
//! Traces live in shards chosen by trace id, each behind its own lock, so
//! writers of different traces rarely contend and readers never wait for one
//! global lock. Each shard holds its share of two bounds, a trace count and a
//! byte budget (an estimate of heap use), and evicts its oldest traces (by first
//! write) when either is exceeded. Trace ids are random, so shards fill evenly
//! and eviction is oldest-first store-wide to within one shard's share.

mod size;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use spoor_model::{DependencyLink, RefType, Span, SpanId, SpanKind, Trace, TraceId};
use spoor_storage::{
    DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter, StorageError, TraceQuery,
    dedupe_spans, span_matches,
};

/// Bounds of a [`MemoryStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// At most this many traces; 0 for no count bound (the byte budget still holds).
    pub max_traces: usize,
    /// At most about this many bytes of span data.
    pub max_bytes: usize,
}

/// Counters a metrics exporter reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub traces: u64,
    pub spans: u64,
    pub bytes: u64,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
}

const MAX_SHARDS: usize = 64;
/// Below this many traces per shard, fewer shards keep the count bound exact.
const MIN_TRACES_PER_SHARD: usize = 1024;

struct StoredTrace {
    spans: Vec<Span>,
    bytes: usize,
    /// The earliest span start, for search ordering.
    start: SystemTime,
}

struct Shard {
    traces: HashMap<TraceId, StoredTrace>,
    /// Trace ids in order of first write; the front is evicted first.
    order: VecDeque<TraceId>,
    bytes: usize,
    spans: usize,
}

type OperationIndex = HashMap<String, HashMap<SpanKind, HashSet<String>>>;

pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
    max_traces_per_shard: usize,
    max_bytes_per_shard: usize,
    operations: RwLock<OperationIndex>,
    evicted_traces: AtomicU64,
    evicted_spans: AtomicU64,
}

impl MemoryStore {
    pub fn new(config: MemoryConfig) -> Self {
        let shards = if config.max_traces == 0 {
            MAX_SHARDS
        } else {
            (config.max_traces / MIN_TRACES_PER_SHARD)
                .clamp(1, MAX_SHARDS)
                .next_power_of_two()
                .min(MAX_SHARDS)
        };
        let per_shard = |total: usize| {
            if total == 0 {
                usize::MAX
            } else {
                (total / shards).max(1)
            }
        };
        MemoryStore {
            shards: (0..shards)
                .map(|_| {
                    RwLock::new(Shard {
                        traces: HashMap::new(),
                        order: VecDeque::new(),
                        bytes: 0,
                        spans: 0,
                    })
                })
                .collect(),
            max_traces_per_shard: per_shard(config.max_traces),
            max_bytes_per_shard: per_shard(config.max_bytes),
            operations: RwLock::new(HashMap::new()),
            evicted_traces: AtomicU64::new(0),
            evicted_spans: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: TraceId) -> &RwLock<Shard> {
        let mixed = (id.low() ^ id.high()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(mixed >> 32) as usize % self.shards.len()]
    }

    pub fn stats(&self) -> MemoryStats {
        let mut stats = MemoryStats {
            evicted_traces: self.evicted_traces.load(Ordering::Relaxed),
            evicted_spans: self.evicted_spans.load(Ordering::Relaxed),
            ..Default::default()
        };
        for shard in self.shards.iter() {
            let s = shard.read().expect("shard lock poisoned");
            stats.traces += s.traces.len() as u64;
            stats.spans += s.spans as u64;
            stats.bytes += s.bytes as u64;
        }
        stats
    }

    fn insert(&self, span: Span) {
        let size = size::span_bytes(&span);
        let mut shard = self
            .shard(span.trace_id)
            .write()
            .expect("shard lock poisoned");
        let shard = &mut *shard;
        let trace_id = span.trace_id;
        match shard.traces.get_mut(&trace_id) {
            Some(t) => {
                // processes are shared between spans of a batch: count each once
                let shared = t
                    .spans
                    .last()
                    .is_some_and(|l| Arc::ptr_eq(&l.process, &span.process));
                let size = if shared {
                    size
                } else {
                    size + size::process_bytes(&span.process)
                };
                t.start = t.start.min(span.start_time);
                t.bytes += size;
                t.spans.push(span);
                shard.bytes += size;
            }
            None => {
                let size = size + size::process_bytes(&span.process);
                shard.traces.insert(
                    trace_id,
                    StoredTrace {
                        start: span.start_time,
                        spans: vec![span],
                        bytes: size,
                    },
                );
                shard.order.push_back(trace_id);
                shard.bytes += size;
            }
        }
        shard.spans += 1;
        while shard.traces.len() > self.max_traces_per_shard
            || (shard.bytes > self.max_bytes_per_shard && shard.traces.len() > 1)
        {
            let Some(oldest) = shard.order.pop_front() else {
                break;
            };
            if let Some(t) = shard.traces.remove(&oldest) {
                shard.bytes -= t.bytes;
                shard.spans -= t.spans.len();
                self.evicted_traces.fetch_add(1, Ordering::Relaxed);
                self.evicted_spans
                    .fetch_add(t.spans.len() as u64, Ordering::Relaxed);
            }
        }
    }

    fn index_operation(&self, span: &Span) {
        let service = span.process.service_name.as_str();
        let kind = span.kind();
        let known = |ops: &OperationIndex| {
            ops.get(service)
                .and_then(|kinds| kinds.get(&kind))
                .is_some_and(|names| names.contains(span.operation_name.as_str()))
        };
        if known(&self.operations.read().expect("index lock poisoned")) {
            return;
        }
        let mut ops = self.operations.write().expect("index lock poisoned");
        ops.entry(service.to_string())
            .or_default()
            .entry(kind)
            .or_default()
            .insert(span.operation_name.clone());
    }

    /// Ids and start times of the newest matching traces, newest first.
    fn search(&self, query: &TraceQuery) -> Vec<TraceId> {
        let limit = query.limit();
        // a min-heap of the newest `limit` traces seen so far
        let mut newest: BinaryHeap<Reverse<(SystemTime, TraceId)>> = BinaryHeap::new();
        for shard in self.shards.iter() {
            let shard = shard.read().expect("shard lock poisoned");
            for (id, trace) in &shard.traces {
                if newest.len() == limit
                    && newest
                        .peek()
                        .is_some_and(|Reverse(oldest)| (trace.start, *id) <= *oldest)
                {
                    continue;
                }
                if trace.spans.iter().any(|s| span_matches(s, query)) {
                    newest.push(Reverse((trace.start, *id)));
                    if newest.len() > limit {
                        newest.pop();
                    }
                }
            }
        }
        let mut found: Vec<(SystemTime, TraceId)> =
            newest.into_iter().map(|Reverse(x)| x).collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, id)| id).collect()
    }

    fn trace(&self, id: TraceId) -> Option<Trace> {
        let shard = self.shard(id).read().expect("shard lock poisoned");
        let mut spans = shard.traces.get(&id)?.spans.clone();
        drop(shard);
        dedupe_spans(&mut spans);
        Some(Trace {
            spans,
            warnings: vec![],
        })
    }
}

#[async_trait]
impl SpanWriter for MemoryStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        for span in spans {
            self.index_operation(&span);
            self.insert(span);
        }
        Ok(())
    }
}

#[async_trait]
impl SpanReader for MemoryStore {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        Ok(self.trace(trace_id))
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        let ops = self.operations.read().expect("index lock poisoned");
        let mut services: Vec<String> = ops.keys().cloned().collect();
        services.sort();
        Ok(services)
    }

    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        let ops = self.operations.read().expect("index lock poisoned");
        let Some(kinds) = ops.get(&query.service_name) else {
            return Ok(vec![]);
        };
        let mut out: Vec<Operation> = kinds
            .iter()
            .filter(|(kind, _)| query.span_kind.is_none_or(|k| k == **kind))
            .flat_map(|(kind, names)| {
                names.iter().map(|name| Operation {
                    name: name.clone(),
                    span_kind: *kind,
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        query.validate()?;
        // a trace evicted between search and read is left out
        Ok(self
            .search(query)
            .into_iter()
            .filter_map(|id| self.trace(id))
            .collect())
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        query.validate()?;
        Ok(self.search(query))
    }
}

#[async_trait]
impl DependencyReader for MemoryStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        let start = end_time
            .checked_sub(lookback)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut counts: HashMap<(String, String), u64> = HashMap::new();
        for shard in self.shards.iter() {
            let shard = shard.read().expect("shard lock poisoned");
            for trace in shard.traces.values() {
                let service_of: HashMap<SpanId, &str> = trace
                    .spans
                    .iter()
                    .map(|s| (s.span_id, s.process.service_name.as_str()))
                    .collect();
                for span in &trace.spans {
                    if span.start_time < start || span.start_time > end_time {
                        continue;
                    }
                    let parent = span
                        .references
                        .iter()
                        .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id);
                    let Some(parent) = parent.and_then(|r| service_of.get(&r.span_id)) else {
                        continue;
                    };
                    if *parent != span.process.service_name {
                        *counts
                            .entry((parent.to_string(), span.process.service_name.clone()))
                            .or_default() += 1;
                    }
                }
            }
        }
        let mut links: Vec<DependencyLink> = counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
                source: String::new(),
            })
            .collect();
        links.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        Ok(links)
    }
}

#[cfg(test)]
mod tests;
