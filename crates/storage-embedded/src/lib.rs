//! A persistent span store for the all-in-one and small installs, on redb (a
//! pure-Rust, copy-on-write B-tree with ACID transactions; see
//! docs/decisions/embedded-store.md). Each `write_spans` call is one
//! transaction, fsynced on commit: what it acknowledged survives a crash.
//!
//! Keys are built so that ranges answer queries: spans by trace id; traces by
//! service (and by service and operation) newest first; spans by start time
//! for retention and dependencies. Service and operation names are
//! length-prefixed so no name can run into another.
//!
//! redb calls block, so every operation runs on tokio's blocking pool.

mod keys;
mod sampling;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use spoor_model::{DependencyLink, RefType, Span, SpanId, Trace, TraceId};
use spoor_storage::{
    DependencyCounter, DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter,
    StorageError, TraceQuery, dedupe_spans, span_matches,
};

use keys::{Key, nanos};

/// trace id ++ sequence -> api_v2 span (with its process)
const SPANS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("spans");
/// service ++ newest-first start ++ trace id -> ()
const BY_SERVICE: TableDefinition<&[u8], ()> = TableDefinition::new("by_service");
/// service ++ operation ++ newest-first start ++ trace id -> ()
const BY_OPERATION: TableDefinition<&[u8], ()> = TableDefinition::new("by_operation");
/// service ++ kind ++ operation -> ()
const OPERATIONS: TableDefinition<&[u8], ()> = TableDefinition::new("operations");
/// start ++ trace id ++ sequence -> service ++ operation (to delete the index rows)
const BY_TIME: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_time");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQUENCE: &str = "next_sequence";

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// service -> its operations, mirroring the operations table.
type OperationCache = BTreeMap<String, BTreeSet<Operation>>;

pub struct EmbeddedStore {
    /// Written for compaction only, which needs the database to itself.
    db: Arc<RwLock<Database>>,
    /// Services and operations, loaded at open and kept current by writes,
    /// so listing them reads no table and known ones are not rewritten.
    operations: Arc<RwLock<OperationCache>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("spoor.redb")).map_err(backend)?;
        let tx = db.begin_write().map_err(backend)?;
        for table in [SPANS, BY_TIME] {
            tx.open_table(table).map_err(backend)?;
        }
        for table in [BY_SERVICE, BY_OPERATION, OPERATIONS] {
            tx.open_table(table).map_err(backend)?;
        }
        tx.open_table(META).map_err(backend)?;
        sampling::create_tables(&tx)?;
        tx.commit().map_err(backend)?;
        let mut operations = OperationCache::new();
        {
            let tx = db.begin_read().map_err(backend)?;
            for row in tx
                .open_table(OPERATIONS)
                .map_err(backend)?
                .iter()
                .map_err(backend)?
            {
                let (key, _) = row.map_err(backend)?;
                let (service, span_kind, name) = keys::split_operation_key(key.value());
                operations
                    .entry(service)
                    .or_default()
                    .insert(Operation { name, span_kind });
            }
        }
        Ok(EmbeddedStore {
            db: Arc::new(RwLock::new(db)),
            operations: Arc::new(RwLock::new(operations)),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db.read().expect("database lock poisoned")))
            .await
            .map_err(backend)?
    }

    /// Purges spans older than `retention` now and then (a tenth of the
    /// retention, between a minute and an hour); None when keeping forever.
    pub fn spawn_retention(
        self: &Arc<Self>,
        retention: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if retention.is_zero() {
            return None;
        }
        let every = (retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600));
        let store = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let cutoff = SystemTime::now()
                    .checked_sub(retention)
                    .unwrap_or(UNIX_EPOCH);
                match store.purge_before(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(spans = n, "retention deleted old spans"),
                    Err(e) => tracing::warn!(error = %e, "retention pass failed"),
                }
            }
        }))
    }

    /// Deletes every span that started before `cutoff`, then compacts the
    /// file so the space goes back to the file system. Returns spans deleted.
    pub async fn purge_before(&self, cutoff: SystemTime) -> Result<u64, StorageError> {
        let deleted = self.blocking(move |db| purge(db, cutoff)).await?;
        if deleted > 0 {
            let db = Arc::clone(&self.db);
            tokio::task::spawn_blocking(move || {
                let mut db = db.write().expect("database lock poisoned");
                while db.compact().map_err(backend)? {}
                Ok::<_, StorageError>(())
            })
            .await
            .map_err(backend)??;
        }
        Ok(deleted)
    }
}

fn purge(db: &Database, cutoff: SystemTime) -> Result<u64, StorageError> {
    let tx = db.begin_write().map_err(backend)?;
    let mut deleted = 0;
    {
        let mut by_time = tx.open_table(BY_TIME).map_err(backend)?;
        let mut spans = tx.open_table(SPANS).map_err(backend)?;
        let mut by_service = tx.open_table(BY_SERVICE).map_err(backend)?;
        let mut by_operation = tx.open_table(BY_OPERATION).map_err(backend)?;
        let end = Key::new().u64(nanos(cutoff)).bytes();
        let old: Vec<(Vec<u8>, Vec<u8>)> = by_time
            .range::<&[u8]>(..end.as_slice())
            .map_err(backend)?
            .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        for (key, names) in old {
            let (start, trace, seq) = keys::split_time_key(&key);
            let (service, operation) = keys::split_names(&names);
            spans
                .remove(Key::span(trace, seq).as_slice())
                .map_err(backend)?;
            by_service
                .remove(Key::by_service(&service, start, trace).as_slice())
                .map_err(backend)?;
            by_operation
                .remove(Key::by_operation(&service, &operation, start, trace).as_slice())
                .map_err(backend)?;
            by_time.remove(key.as_slice()).map_err(backend)?;
            deleted += 1;
        }
    }
    sampling::purge_throughput(&tx, cutoff)?;
    tx.commit().map_err(backend)?;
    Ok(deleted)
}

fn write(
    db: &Database,
    cache: &RwLock<OperationCache>,
    spans: Vec<Span>,
) -> Result<(), StorageError> {
    let known = |service: &str, op: &Operation| {
        cache
            .read()
            .expect("operations lock poisoned")
            .get(service)
            .is_some_and(|ops| ops.contains(op))
    };
    let mut new_operations: Vec<(String, Operation)> = Vec::new();
    let tx = db.begin_write().map_err(backend)?;
    {
        let mut meta = tx.open_table(META).map_err(backend)?;
        let mut seq = meta
            .get(NEXT_SEQUENCE)
            .map_err(backend)?
            .map_or(0, |v| v.value());
        let mut table = tx.open_table(SPANS).map_err(backend)?;
        let mut by_service = tx.open_table(BY_SERVICE).map_err(backend)?;
        let mut by_operation = tx.open_table(BY_OPERATION).map_err(backend)?;
        let mut operations = tx.open_table(OPERATIONS).map_err(backend)?;
        let mut by_time = tx.open_table(BY_TIME).map_err(backend)?;
        for span in &spans {
            let trace = span.trace_id.0;
            let start = nanos(span.start_time);
            let service = span.process.service_name.as_str();
            let operation = span.operation_name.as_str();
            let body = spoor_proto::span_to_proto(span).encode_to_vec();
            table
                .insert(Key::span(trace, seq).as_slice(), body.as_slice())
                .map_err(backend)?;
            by_service
                .insert(Key::by_service(service, start, trace).as_slice(), ())
                .map_err(backend)?;
            by_operation
                .insert(
                    Key::by_operation(service, operation, start, trace).as_slice(),
                    (),
                )
                .map_err(backend)?;
            let op = Operation {
                name: operation.to_string(),
                span_kind: span.kind(),
            };
            if !known(service, &op) && !new_operations.iter().any(|(s, o)| s == service && *o == op)
            {
                operations
                    .insert(
                        Key::operation(service, op.span_kind, operation).as_slice(),
                        (),
                    )
                    .map_err(backend)?;
                new_operations.push((service.to_string(), op));
            }
            let names = Key::new().str(service).str(operation).bytes();
            by_time
                .insert(
                    Key::new()
                        .u64(start)
                        .u128(trace)
                        .u64(seq)
                        .bytes()
                        .as_slice(),
                    names.as_slice(),
                )
                .map_err(backend)?;
            seq += 1;
        }
        meta.insert(NEXT_SEQUENCE, seq).map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    let mut cache = cache.write().expect("operations lock poisoned");
    for (service, op) in new_operations {
        cache.entry(service).or_default().insert(op);
    }
    Ok(())
}

fn read_trace(
    spans: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: TraceId,
) -> Result<Option<Trace>, StorageError> {
    let (from, to) = (Key::span(id.0, 0), Key::span(id.0, u64::MAX));
    let mut out = Vec::new();
    for row in spans
        .range::<&[u8]>(from.as_slice()..=to.as_slice())
        .map_err(backend)?
    {
        let (_, body) = row.map_err(backend)?;
        let proto = spoor_proto::api_v2::Span::decode(body.value()).map_err(backend)?;
        out.push(spoor_proto::span_from_proto(proto, None).map_err(backend)?);
    }
    if out.is_empty() {
        return Ok(None);
    }
    dedupe_spans(&mut out);
    Ok(Some(Trace {
        spans: out,
        warnings: vec![],
    }))
}

/// The traces matching `q`, newest first by the start of their indexed
/// spans: candidates come from the service (or service and operation)
/// index within the time range, and each is checked span by span.
fn search(db: &Database, q: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
    q.validate()?;
    let tx = db.begin_read().map_err(backend)?;
    let spans = tx.open_table(SPANS).map_err(backend)?;
    let (min, max) = (nanos(q.start_time_min), nanos(q.start_time_max));
    let (from, to) = match &q.operation_name {
        Some(op) => (
            Key::by_operation(&q.service_name, op, max, 0),
            Key::by_operation(&q.service_name, op, min, u128::MAX),
        ),
        None => (
            Key::by_service(&q.service_name, max, 0),
            Key::by_service(&q.service_name, min, u128::MAX),
        ),
    };
    let index = match &q.operation_name {
        Some(_) => tx.open_table(BY_OPERATION).map_err(backend)?,
        None => tx.open_table(BY_SERVICE).map_err(backend)?,
    };
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for row in index
        .range::<&[u8]>(from.as_slice()..=to.as_slice())
        .map_err(backend)?
    {
        let (key, _) = row.map_err(backend)?;
        let trace_id = TraceId(keys::trailing_trace_id(key.value()));
        if !seen.insert(trace_id) {
            continue;
        }
        if let Some(trace) = read_trace(&spans, trace_id)?
            && trace.spans.iter().any(|s| span_matches(s, q))
        {
            found.push(trace);
            if found.len() == q.limit() {
                break;
            }
        }
    }
    found.sort_by_key(|t| std::cmp::Reverse(t.start_time()));
    Ok(found)
}

#[async_trait]
impl SpanWriter for EmbeddedStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let cache = Arc::clone(&self.operations);
        self.blocking(move |db| write(db, &cache, spans)).await
    }
}

#[async_trait]
impl SpanReader for EmbeddedStore {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            read_trace(&tx.open_table(SPANS).map_err(backend)?, trace_id)
        })
        .await
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .operations
            .read()
            .expect("operations lock poisoned")
            .keys()
            .cloned()
            .collect())
    }

    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        let cache = self.operations.read().expect("operations lock poisoned");
        let Some(ops) = cache.get(&query.service_name) else {
            return Ok(vec![]);
        };
        Ok(ops
            .iter()
            .filter(|o| query.span_kind.is_none_or(|k| k == o.span_kind))
            .cloned()
            .collect())
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        let query = query.clone();
        self.blocking(move |db| search(db, &query)).await
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        let traces = self.find_traces(query).await?;
        Ok(traces
            .iter()
            .filter_map(|t| t.spans.first().map(|s| s.trace_id))
            .collect())
    }
}

#[async_trait]
impl DependencyReader for EmbeddedStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        self.blocking(move |db| {
            let start = end_time.checked_sub(lookback).unwrap_or(UNIX_EPOCH);
            let tx = db.begin_read().map_err(backend)?;
            let by_time = tx.open_table(BY_TIME).map_err(backend)?;
            let spans = tx.open_table(SPANS).map_err(backend)?;
            let (from, to) = (
                Key::new().u64(nanos(start)).bytes(),
                Key::new().u64(nanos(end_time)).u128(u128::MAX).bytes(),
            );
            let mut traces = BTreeSet::new();
            for row in by_time
                .range::<&[u8]>(from.as_slice()..=to.as_slice())
                .map_err(backend)?
            {
                let (key, _) = row.map_err(backend)?;
                traces.insert(keys::split_time_key(key.value()).1);
            }
            let mut counts = DependencyCounter::default();
            for id in traces {
                let Some(trace) = read_trace(&spans, TraceId(id))? else {
                    continue;
                };
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
                    if let Some(parent) = parent.and_then(|r| service_of.get(&r.span_id))
                        && *parent != span.process.service_name
                    {
                        counts.add_call(parent, &span.process.service_name);
                    }
                }
            }
            Ok(counts.into_links())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
