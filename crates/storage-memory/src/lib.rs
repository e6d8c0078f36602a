//! A bounded in-memory span store, the default of the all-in-one.
//!
//! Traces live in shards chosen by trace id, each behind its own lock, so
//! writers of different traces rarely contend and readers never wait for one
//! global lock. Each shard holds its share of two bounds, a trace count and a
//! byte budget (an estimate of heap use), and evicts its oldest traces (by first
//! write) when either is exceeded. Trace ids are random, so shards fill evenly
//! and eviction is oldest-first store-wide to within one shard's share.

mod intern;
mod record;
mod sampling;

pub use sampling::MemorySamplingStore;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use spoor_model::{DependencyLink, Process, RefType, Span, SpanId, SpanKind, Trace, TraceId};
use spoor_storage::{
    DependencyCounter, DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter,
    StorageError, TraceQuery, dedupe_spans,
};

use intern::{Interner, Sym};
use record::{StoredSpan, TagValue, process_bytes};
use spoor_model::time::unix_nanos;

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
    /// Spans refused because their trace alone would outgrow its shard's budget.
    pub dropped_spans: u64,
}

const MAX_SHARDS: usize = 64;
/// Below this many traces per shard, fewer shards keep the count bound exact.
const MIN_TRACES_PER_SHARD: usize = 1024;
/// Distinct processes remembered so that equal processes from different
/// requests share one allocation; the table starts over when full.
const PROCESS_CACHE: usize = 4096;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct StoredTrace {
    spans: Vec<StoredSpan>,
    /// Spans refused because the trace reached its bound; told to readers.
    refused: u64,
    bytes: usize,
    /// The earliest span start, in nanoseconds, for search ordering.
    start_ns: u64,
}

#[derive(Default)]
struct Shard {
    traces: FastMap<TraceId, StoredTrace>,
    /// Trace ids in order of first write; the front is evicted first.
    order: VecDeque<TraceId>,
    /// Bytes of span records and cached processes; strings are in `strings`.
    bytes: usize,
    spans: usize,
    strings: Interner,
}

impl Shard {
    fn total_bytes(&self) -> usize {
        self.bytes + self.strings.bytes()
    }

    /// Stores the span unless its trace would outgrow `max_trace_bytes`
    /// (one trace may fill its shard, never more); false when refused.
    fn insert(&mut self, span: &Span, process: Arc<Process>, max_trace_bytes: usize) -> bool {
        let record = StoredSpan::new(span, process, &mut self.strings);
        let size = record.bytes();
        let held = self.traces.get(&span.trace_id).map_or(0, |t| t.bytes);
        // the strings stay while the trace does, so they count against it
        if held + size > max_trace_bytes.saturating_sub(self.strings.bytes()) {
            record.release(&mut self.strings);
            if let Some(trace) = self.traces.get_mut(&span.trace_id) {
                trace.refused += 1;
            }
            return false;
        }
        let trace = self.traces.entry(span.trace_id).or_insert_with(|| {
            self.order.push_back(span.trace_id);
            StoredTrace {
                spans: Vec::new(),
                refused: 0,
                bytes: 0,
                start_ns: u64::MAX,
            }
        });
        trace.start_ns = trace.start_ns.min(record.start_ns);
        trace.bytes += size;
        trace.spans.push(record);
        self.bytes += size;
        self.spans += 1;
        true
    }

    /// Evicts oldest traces until within bounds; returns (traces, spans) evicted.
    fn evict(&mut self, max_traces: usize, max_bytes: usize) -> (u64, u64) {
        let (mut traces, mut spans) = (0, 0);
        while self.traces.len() > max_traces
            || (self.total_bytes() > max_bytes && self.traces.len() > 1)
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(t) = self.traces.remove(&oldest) {
                for span in &t.spans {
                    span.release(&mut self.strings);
                }
                self.bytes -= t.bytes;
                self.spans -= t.spans.len();
                traces += 1;
                spans += t.spans.len() as u64;
            }
        }
        (traces, spans)
    }

    fn trace(&self, id: TraceId, max_trace_bytes: usize) -> Option<Trace> {
        let stored = self.traces.get(&id)?;
        let mut spans: Vec<Span> = stored
            .spans
            .iter()
            .map(|s| s.to_span(id, &self.strings))
            .collect();
        dedupe_spans(&mut spans);
        if stored.refused > 0 {
            // on the earliest span, where a reader of the trace sees it first
            if let Some(first) = spans.iter_mut().min_by_key(|s| s.start_time) {
                first
                    .warnings
                    .push(refused_warning(stored.refused, max_trace_bytes));
            }
        }
        Some(Trace {
            spans,
            warnings: vec![],
        })
    }
}

fn refused_reason(max_trace_bytes: usize) -> String {
    format!(
        "their trace reached the memory store's bound of {max_trace_bytes} bytes per trace \
         (--memory.max-bytes / shards)"
    )
}

fn refused_warning(refused: u64, max_trace_bytes: usize) -> String {
    format!(
        "{refused} span(s) of this trace were not stored: {}",
        refused_reason(max_trace_bytes)
    )
}

type OperationIndex = HashMap<String, HashMap<SpanKind, HashSet<String>>>;

pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
    max_traces_per_shard: usize,
    max_bytes_per_shard: usize,
    operations: RwLock<OperationIndex>,
    /// Processes by content hash, shared by all shards.
    processes: RwLock<FastMap<u64, Vec<Arc<Process>>>>,
    process_bytes: AtomicU64,
    evicted_traces: AtomicU64,
    evicted_spans: AtomicU64,
    dropped_spans: AtomicU64,
}

/// A hash of a process's content; floats by their bits.
fn process_hash(p: &Process) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    p.service_name.hash(&mut h);
    for kv in &p.tags {
        kv.key.hash(&mut h);
        match &kv.value {
            spoor_model::Value::String(s) => s.hash(&mut h),
            spoor_model::Value::Bool(b) => b.hash(&mut h),
            spoor_model::Value::Int64(i) => i.hash(&mut h),
            spoor_model::Value::Float64(f) => f.to_bits().hash(&mut h),
            spoor_model::Value::Binary(b) => b.hash(&mut h),
        }
    }
    h.finish()
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
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            max_traces_per_shard: per_shard(config.max_traces),
            max_bytes_per_shard: per_shard(config.max_bytes),
            operations: RwLock::new(HashMap::new()),
            processes: RwLock::new(FastMap::default()),
            process_bytes: AtomicU64::new(0),
            evicted_traces: AtomicU64::new(0),
            evicted_spans: AtomicU64::new(0),
            dropped_spans: AtomicU64::new(0),
        }
    }

    fn shard_index(&self, id: TraceId) -> usize {
        let mixed = (id.low() ^ id.high()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as usize % self.shards.len()
    }

    fn shard(&self, id: TraceId) -> &RwLock<Shard> {
        &self.shards[self.shard_index(id)]
    }

    pub fn stats(&self) -> MemoryStats {
        let mut stats = MemoryStats {
            evicted_traces: self.evicted_traces.load(Ordering::Relaxed),
            evicted_spans: self.evicted_spans.load(Ordering::Relaxed),
            dropped_spans: self.dropped_spans.load(Ordering::Relaxed),
            ..Default::default()
        };
        for shard in self.shards.iter() {
            let s = shard.read().expect("shard lock poisoned");
            stats.traces += s.traces.len() as u64;
            stats.spans += s.spans as u64;
            stats.bytes += s.total_bytes() as u64;
        }
        stats.bytes += self.process_bytes.load(Ordering::Relaxed);
        stats
    }

    /// The shared copy of a process equal to `process`, remembering it if new.
    fn canonical_process(&self, process: &Arc<Process>) -> Arc<Process> {
        let hash = process_hash(process);
        let find = |table: &FastMap<u64, Vec<Arc<Process>>>| {
            table.get(&hash).and_then(|ps| {
                ps.iter()
                    .find(|p| Arc::ptr_eq(p, process) || ***p == **process)
                    .cloned()
            })
        };
        if let Some(p) = find(&self.processes.read().expect("process lock poisoned")) {
            return p;
        }
        let mut table = self.processes.write().expect("process lock poisoned");
        if let Some(p) = find(&table) {
            return p;
        }
        if table.len() >= PROCESS_CACHE {
            table.clear();
        }
        self.process_bytes
            .fetch_add(process_bytes(process) as u64, Ordering::Relaxed);
        table.entry(hash).or_default().push(Arc::clone(process));
        Arc::clone(process)
    }

    /// Adds the batch's new (service, kind, operation) triples to the index,
    /// taking the write lock only when one is new.
    fn index_operations(&self, spans: &[Span]) {
        let mut seen: Vec<(&str, SpanKind, &str)> = Vec::new();
        for span in spans {
            let key = (
                span.process.service_name.as_str(),
                span.kind(),
                span.operation_name.as_str(),
            );
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
        let known = |ops: &OperationIndex, (service, kind, op): &(&str, SpanKind, &str)| {
            ops.get(*service)
                .and_then(|kinds| kinds.get(kind))
                .is_some_and(|names| names.contains(*op))
        };
        {
            let ops = self.operations.read().expect("index lock poisoned");
            seen.retain(|key| !known(&ops, key));
        }
        if seen.is_empty() {
            return;
        }
        let mut ops = self.operations.write().expect("index lock poisoned");
        for (service, kind, op) in seen {
            ops.entry(service.to_string())
                .or_default()
                .entry(kind)
                .or_default()
                .insert(op.to_string());
        }
    }

    /// Ids of the newest matching traces, newest first.
    fn search(&self, query: &TraceQuery) -> Vec<TraceId> {
        let limit = query.limit();
        let (min_ns, max_ns) = (
            unix_nanos(query.start_time_min),
            unix_nanos(query.start_time_max),
        );
        let (dmin, dmax) = (
            query.duration_min.map_or(0, |d| d.as_nanos() as u64),
            query.duration_max.map_or(u64::MAX, |d| d.as_nanos() as u64),
        );
        // a min-heap of the newest `limit` traces seen so far
        let mut newest: BinaryHeap<Reverse<(u64, TraceId)>> = BinaryHeap::new();
        for shard in self.shards.iter() {
            let shard = shard.read().expect("shard lock poisoned");
            let operation: Option<Sym> = match &query.operation_name {
                None => None,
                Some(op) => match shard.strings.lookup(op) {
                    Some(sym) => Some(sym),
                    None => continue, // no span in this shard has that operation
                },
            };
            let tags: Vec<(Option<Sym>, &str, TagValue)> = query
                .tags
                .iter()
                .map(|(k, v)| {
                    (
                        shard.strings.lookup(k),
                        k.as_str(),
                        TagValue {
                            text: v,
                            sym: shard.strings.lookup(v),
                        },
                    )
                })
                .collect();
            let matches = |s: &StoredSpan| {
                s.process.service_name == query.service_name
                    && operation.is_none_or(|op| s.operation == op)
                    && (min_ns..=max_ns).contains(&s.start_ns)
                    && (dmin..=dmax).contains(&s.duration_ns)
                    && tags.iter().all(|(key_sym, key, value)| {
                        key_sym.is_some_and(|k| s.has_tag(k, value))
                            || s.process
                                .tags
                                .iter()
                                .any(|kv| kv.key == *key && kv.value.as_string() == value.text)
                    })
            };
            for (id, trace) in &shard.traces {
                if newest.len() == limit
                    && newest
                        .peek()
                        .is_some_and(|Reverse(oldest)| (trace.start_ns, *id) <= *oldest)
                {
                    continue;
                }
                if trace.spans.iter().any(matches) {
                    newest.push(Reverse((trace.start_ns, *id)));
                    if newest.len() > limit {
                        newest.pop();
                    }
                }
            }
        }
        let mut found: Vec<(u64, TraceId)> = newest.into_iter().map(|Reverse(x)| x).collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, id)| id).collect()
    }

    fn trace(&self, id: TraceId) -> Option<Trace> {
        self.shard(id)
            .read()
            .expect("shard lock poisoned")
            .trace(id, self.max_bytes_per_shard)
    }
}

#[async_trait]
impl SpanWriter for MemoryStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        self.index_operations(&spans);
        // a batch holds few distinct processes: look each up once
        let mut canonical: Vec<(*const Process, Arc<Process>)> = Vec::new();
        let mut process_of =
            |p: &Arc<Process>| match canonical.iter().find(|(ptr, _)| *ptr == Arc::as_ptr(p)) {
                Some((_, c)) => Arc::clone(c),
                None => {
                    let c = self.canonical_process(p);
                    canonical.push((Arc::as_ptr(p), Arc::clone(&c)));
                    c
                }
            };
        // one lock per shard the batch touches, not one per span
        let mut by_shard: Vec<(usize, &Span, Arc<Process>)> = spans
            .iter()
            .map(|s| (self.shard_index(s.trace_id), s, process_of(&s.process)))
            .collect();
        by_shard.sort_unstable_by_key(|(i, _, _)| *i);
        let mut refused_in_batch = 0;
        for group in by_shard.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[group[0].0]
                .write()
                .expect("shard lock poisoned");
            let mut refused = 0;
            for (_, span, process) in group {
                if !shard.insert(span, Arc::clone(process), self.max_bytes_per_shard) {
                    refused += 1;
                }
            }
            let (traces, spans) = shard.evict(self.max_traces_per_shard, self.max_bytes_per_shard);
            drop(shard);
            if traces > 0 {
                self.evicted_traces.fetch_add(traces, Ordering::Relaxed);
                self.evicted_spans.fetch_add(spans, Ordering::Relaxed);
            }
            if refused > 0 {
                self.dropped_spans.fetch_add(refused, Ordering::Relaxed);
                refused_in_batch += refused as usize;
            }
        }
        if refused_in_batch > 0 {
            return Err(StorageError::SpansRefused {
                count: refused_in_batch,
                reason: refused_reason(self.max_bytes_per_shard),
            });
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
        Ok(off_the_workers(|| {
            self.search(query)
                .into_iter()
                .filter_map(|id| self.trace(id))
                .collect()
        }))
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        query.validate()?;
        Ok(off_the_workers(|| self.search(query)))
    }
}

/// Runs a scan of every shard where the async workers are not needed: on a
/// multi-threaded runtime the worker hands its other tasks on while the scan
/// holds shard locks (`block_in_place`); elsewhere (tests) it just runs.
fn off_the_workers<T>(scan: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(scan)
        }
        _ => scan(),
    }
}

#[async_trait]
impl DependencyReader for MemoryStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        Ok(off_the_workers(|| self.dependencies(end_time, lookback)))
    }
}

impl MemoryStore {
    /// Calls between services over every shard's traces in the window.
    fn dependencies(&self, end_time: SystemTime, lookback: Duration) -> Vec<DependencyLink> {
        let end_ns = unix_nanos(end_time);
        let start_ns = unix_nanos(end_time.checked_sub(lookback).unwrap_or(UNIX_EPOCH));
        let mut counts = DependencyCounter::default();
        for shard in self.shards.iter() {
            let shard = shard.read().expect("shard lock poisoned");
            for (trace_id, trace) in &shard.traces {
                let service_of: HashMap<SpanId, &str> = trace
                    .spans
                    .iter()
                    .map(|s| (s.span_id, s.process.service_name.as_str()))
                    .collect();
                for span in &trace.spans {
                    if !(start_ns..=end_ns).contains(&span.start_ns) {
                        continue;
                    }
                    let parent = span
                        .references
                        .iter()
                        .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == *trace_id);
                    let Some(parent) = parent.and_then(|r| service_of.get(&r.span_id)) else {
                        continue;
                    };
                    if *parent != span.process.service_name {
                        counts.add_call(parent, &span.process.service_name);
                    }
                }
            }
        }
        counts.into_links()
    }
}

#[cfg(test)]
mod tests;
