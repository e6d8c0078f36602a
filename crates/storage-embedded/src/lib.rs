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

mod block;
mod blocks;
mod head;
mod keys;
mod migrate;
mod objects;
mod sampling;
mod sampling_file;
mod wal;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use spoor_model::{DependencyLink, Span, Trace, TraceId};
use spoor_storage::{
    DependencyCounter, DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter,
    StorageError, TraceQuery, dedupe_spans, span_matches,
};

use keys::Key;
use spoor_model::time::unix_nanos;

pub use blocks::{BlockOptions, BlockStats, BlockStore};
pub use migrate::migrate_redb;
pub use sampling_file::FileSamplingStore;

/// trace id ++ sequence -> api_v2 span (with its process)
const SPANS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("spans");
/// service ++ newest-first start ++ trace id -> ()
const BY_SERVICE: TableDefinition<&[u8], ()> = TableDefinition::new("by_service");
/// service ++ operation ++ newest-first start ++ trace id -> ()
const BY_OPERATION: TableDefinition<&[u8], ()> = TableDefinition::new("by_operation");
/// service ++ tag key ++ tag value ++ newest-first start ++ trace id -> ()
/// (span tags, process tags and log fields)
const BY_TAG: TableDefinition<&[u8], ()> = TableDefinition::new("by_tag");
/// service ++ duration ++ start ++ trace id -> ()
const BY_DURATION: TableDefinition<&[u8], ()> = TableDefinition::new("by_duration");
/// service ++ kind ++ operation -> ()
const OPERATIONS: TableDefinition<&[u8], ()> = TableDefinition::new("operations");
/// start ++ trace id ++ sequence -> service ++ operation (to delete the index rows)
const BY_TIME: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_time");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQUENCE: &str = "next_sequence";
/// Version of the index layout; files of older versions are re-indexed at open.
const INDEX_VERSION: &str = "index_version";
const CURRENT_INDEX_VERSION: u64 = 2;
/// 1 when every stored span has its tag index rows.
const TAG_INDEX_COMPLETE: &str = "tag_index_complete";
/// Tag values longer than this are stored but not indexed.
const MAX_INDEXED_VALUE: usize = 256;

/// A failure of the embedded store, caused by `e` (an I/O, Parquet or redb
/// error, or the store's own words).
fn backend(e: impl Into<spoor_storage::BoxError>) -> StorageError {
    StorageError::backend("embedded store", e)
}

/// service -> its operations, mirroring the operations table.
type OperationCache = BTreeMap<String, BTreeSet<Operation>>;

/// What the store indexes.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedOptions {
    /// Index span tags, process tags and log fields: tag searches read only
    /// matching traces, at several times the write cost per span
    /// (docs/benchmarks.md). Without it they check every trace of the service.
    pub index_tags: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions { index_tags: true }
    }
}

pub struct EmbeddedStore {
    /// Written for compaction only, which needs the database to itself.
    db: Arc<RwLock<Database>>,
    options: EmbeddedOptions,
    /// Services and operations, loaded at open and kept current by writes,
    /// so listing them reads no table and known ones are not rewritten.
    operations: Arc<RwLock<OperationCache>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` with every index.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (or creates) the store in `dir`; indexes missing for what is
    /// stored (an older file, or tags indexed again) are built first.
    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        let db = Database::create(dir.join("spoor.redb")).map_err(backend)?;
        let tx = db.begin_write().map_err(backend)?;
        for table in [SPANS, BY_TIME] {
            tx.open_table(table).map_err(backend)?;
        }
        for table in [BY_SERVICE, BY_OPERATION, OPERATIONS, BY_TAG, BY_DURATION] {
            tx.open_table(table).map_err(backend)?;
        }
        tx.open_table(META).map_err(backend)?;
        sampling::create_tables(&tx)?;
        reindex(&tx, options)?;
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
            options,
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

    /// Calls `visit` with the stored spans in batches of about `batch`,
    /// in trace id order (for migrating them to another engine).
    pub fn for_each_batch(
        &self,
        batch: usize,
        mut visit: impl FnMut(Vec<Span>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let db = self.db.read().expect("database lock poisoned");
        let tx = db.begin_read().map_err(backend)?;
        let spans = tx.open_table(SPANS).map_err(backend)?;
        let mut out = Vec::with_capacity(batch);
        for row in spans.iter().map_err(backend)? {
            let (_, body) = row.map_err(backend)?;
            out.push(decode_span(body.value())?);
            if out.len() >= batch {
                visit(std::mem::replace(&mut out, Vec::with_capacity(batch)))?;
            }
        }
        if !out.is_empty() {
            visit(out)?;
        }
        Ok(())
    }

    /// Purges spans older than `retention` now and then; None when keeping forever.
    pub fn spawn_retention(
        self: &Arc<Self>,
        retention: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let store = Arc::clone(self);
        spawn_retention(retention, move |cutoff| {
            let store = Arc::clone(&store);
            async move { Some(store.purge_before(cutoff).await) }
        })
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

/// Calls `purge` with the retention's cutoff now and then (a tenth of the
/// retention, between a minute and an hour) until it answers None; None
/// when keeping forever. Both engines' retention passes run on it.
fn spawn_retention<F, Fut>(retention: Duration, mut purge: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: FnMut(SystemTime) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<Result<u64, StorageError>>> + Send,
{
    if retention.is_zero() {
        return None;
    }
    let every = (retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let cutoff = SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(UNIX_EPOCH);
            match purge(cutoff).await {
                None => return,
                Some(Ok(0)) => {}
                Some(Ok(n)) => tracing::info!(spans = n, "retention deleted old spans"),
                Some(Err(e)) => {
                    tracing::warn!(error = %spoor_storage::Chain(&e), "retention pass failed")
                }
            }
        }
    }))
}

/// The (key, value) pairs of a span that go to the tag index. Process tags
/// are the same for every span of a process: a trace needs them indexed
/// once, which `with_process_tags` says.
fn indexed_tags(span: &Span, with_process_tags: bool) -> Vec<(&str, std::borrow::Cow<'_, str>)> {
    let mut out: Vec<(&str, std::borrow::Cow<'_, str>)> = Vec::new();
    let process_tags: &[spoor_model::KeyValue] = if with_process_tags {
        &span.process.tags
    } else {
        &[]
    };
    let all = span
        .tags
        .iter()
        .chain(process_tags)
        .chain(span.logs.iter().flat_map(|l| &l.fields));
    for kv in all {
        if matches!(kv.value, spoor_model::Value::Binary(_)) {
            continue;
        }
        let value = kv.value.as_string();
        if value.len() <= MAX_INDEXED_VALUE && !out.iter().any(|(k, v)| *k == kv.key && *v == value)
        {
            out.push((&kv.key, value));
        }
    }
    out
}

fn tag_keys(span: &Span, with_process_tags: bool) -> Vec<Vec<u8>> {
    let (trace, start) = (span.trace_id.0, unix_nanos(span.start_time));
    let service = span.process.service_name.as_str();
    indexed_tags(span, with_process_tags)
        .into_iter()
        .map(|(k, v)| Key::by_tag(service, k, &v, start, trace))
        .collect()
}

fn duration_key(span: &Span) -> Vec<u8> {
    let duration = span.duration.as_nanos().min(u64::MAX as u128) as u64;
    Key::by_duration(
        &span.process.service_name,
        duration,
        unix_nanos(span.start_time),
        span.trace_id.0,
    )
}

fn decode_span(body: &[u8]) -> Result<Span, StorageError> {
    let proto = spoor_proto::api_v2::Span::decode(body).map_err(backend)?;
    spoor_proto::span_from_proto(proto, None).map_err(backend)
}

/// Builds the indexes the stored spans lack: the duration index for files
/// from before it, the tag index when tags are to be indexed and were not
/// (always) before.
fn reindex(tx: &redb::WriteTransaction, options: EmbeddedOptions) -> Result<(), StorageError> {
    let mut meta = tx.open_table(META).map_err(backend)?;
    let read = |key: &str, default: u64| -> Result<u64, StorageError> {
        Ok(meta
            .get(key)
            .map_err(backend)?
            .map_or(default, |v| v.value()))
    };
    let spans_stored = !tx
        .open_table(SPANS)
        .map_err(backend)?
        .is_empty()
        .map_err(backend)?;
    // a file without spans is complete whatever its flags say
    let durations = spans_stored && read(INDEX_VERSION, 1)? < CURRENT_INDEX_VERSION;
    let tags = spans_stored && options.index_tags && read(TAG_INDEX_COMPLETE, 0)? != 1;
    if durations || tags {
        let spans = tx.open_table(SPANS).map_err(backend)?;
        let mut by_tag = tx.open_table(BY_TAG).map_err(backend)?;
        let mut by_duration = tx.open_table(BY_DURATION).map_err(backend)?;
        for row in spans.iter().map_err(backend)? {
            let (_, body) = row.map_err(backend)?;
            let span = decode_span(body.value())?;
            if durations {
                by_duration
                    .insert(duration_key(&span).as_slice(), ())
                    .map_err(backend)?;
            }
            if tags {
                for key in tag_keys(&span, true) {
                    by_tag.insert(key.as_slice(), ()).map_err(backend)?;
                }
            }
        }
    }
    meta.insert(INDEX_VERSION, CURRENT_INDEX_VERSION)
        .map_err(backend)?;
    meta.insert(TAG_INDEX_COMPLETE, u64::from(options.index_tags))
        .map_err(backend)?;
    Ok(())
}

fn purge(db: &Database, cutoff: SystemTime) -> Result<u64, StorageError> {
    let tx = db.begin_write().map_err(backend)?;
    let mut deleted = 0;
    {
        let mut by_time = tx.open_table(BY_TIME).map_err(backend)?;
        let mut spans = tx.open_table(SPANS).map_err(backend)?;
        let mut by_service = tx.open_table(BY_SERVICE).map_err(backend)?;
        let mut by_operation = tx.open_table(BY_OPERATION).map_err(backend)?;
        let mut by_tag = tx.open_table(BY_TAG).map_err(backend)?;
        let mut by_duration = tx.open_table(BY_DURATION).map_err(backend)?;
        let end = Key::new().u64(unix_nanos(cutoff)).bytes();
        let old: Vec<(Vec<u8>, Vec<u8>)> = by_time
            .range::<&[u8]>(..end.as_slice())
            .map_err(backend)?
            .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        for (key, names) in old {
            let (start, trace, seq) = keys::split_time_key(&key);
            let (service, operation) = keys::split_names(&names);
            let removed = spans
                .remove(Key::span(trace, seq).as_slice())
                .map_err(backend)?;
            if let Some(body) = removed {
                let span = decode_span(body.value())?;
                by_duration
                    .remove(duration_key(&span).as_slice())
                    .map_err(backend)?;
                // with process tags: rows written for only some spans go too
                for key in tag_keys(&span, true) {
                    by_tag.remove(key.as_slice()).map_err(backend)?;
                }
            }
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
    options: EmbeddedOptions,
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
        let mut by_tag = tx.open_table(BY_TAG).map_err(backend)?;
        let mut by_duration = tx.open_table(BY_DURATION).map_err(backend)?;
        // (trace, process) pairs whose process tags this batch indexed
        let mut processes_indexed: HashSet<(u128, *const spoor_model::Process)> = HashSet::new();
        for span in &spans {
            by_duration
                .insert(duration_key(span).as_slice(), ())
                .map_err(backend)?;
            if options.index_tags {
                let first_of_process =
                    processes_indexed.insert((span.trace_id.0, Arc::as_ptr(&span.process)));
                for key in tag_keys(span, first_of_process) {
                    by_tag.insert(key.as_slice(), ()).map_err(backend)?;
                }
            }
            let trace = span.trace_id.0;
            let start = unix_nanos(span.start_time);
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
/// spans. Candidates come from the most selective index the query allows:
/// its first tag, else its duration range, else its operation or service,
/// all within the time range; each candidate is checked span by span.
fn search(
    db: &Database,
    options: EmbeddedOptions,
    q: &TraceQuery,
) -> Result<Vec<Trace>, StorageError> {
    q.validate()?;
    let tx = db.begin_read().map_err(backend)?;
    let spans = tx.open_table(SPANS).map_err(backend)?;
    let (min, max) = (unix_nanos(q.start_time_min), unix_nanos(q.start_time_max));
    let svc = q.service_name.as_str();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    // checks one candidate; true once enough traces are found
    let mut visit = |trace: u128| -> Result<bool, StorageError> {
        let trace_id = TraceId(trace);
        if seen.insert(trace_id)
            && let Some(trace) = read_trace(&spans, trace_id)?
            && trace.spans.iter().any(|s| span_matches(s, q))
        {
            found.push(trace);
        }
        Ok(found.len() == q.limit())
    };
    let first_tag = q.tags.first().filter(|_| options.index_tags);
    let (index, from, to) = if let Some((key, value)) = first_tag {
        (
            BY_TAG,
            Key::by_tag(svc, key, value, max, 0),
            Key::by_tag(svc, key, value, min, u128::MAX),
        )
    } else if q.duration_min.is_some() || q.duration_max.is_some() {
        // ordered by duration: the matches in the time range are sorted
        // newest first before they are checked
        let nanos_of = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        let (dmin, dmax) = (
            q.duration_min.map_or(0, nanos_of),
            q.duration_max.map_or(u64::MAX, nanos_of),
        );
        let table = tx.open_table(BY_DURATION).map_err(backend)?;
        let from = Key::by_duration(svc, dmin, 0, 0);
        let to = Key::by_duration(svc, dmax, u64::MAX, u128::MAX);
        let mut hits = Vec::new();
        for row in table
            .range::<&[u8]>(from.as_slice()..=to.as_slice())
            .map_err(backend)?
        {
            let (start, trace) = keys::split_duration_key(svc, row.map_err(backend)?.0.value());
            if (min..=max).contains(&start) {
                hits.push((start, trace));
            }
        }
        hits.sort_by_key(|&(start, _)| std::cmp::Reverse(start));
        for (_, trace) in hits {
            if visit(trace)? {
                break;
            }
        }
        found.sort_by_key(|t| std::cmp::Reverse(t.start_time()));
        return Ok(found);
    } else if let Some(op) = &q.operation_name {
        (
            BY_OPERATION,
            Key::by_operation(svc, op, max, 0),
            Key::by_operation(svc, op, min, u128::MAX),
        )
    } else {
        (
            BY_SERVICE,
            Key::by_service(svc, max, 0),
            Key::by_service(svc, min, u128::MAX),
        )
    };
    let table = tx.open_table(index).map_err(backend)?;
    for row in table
        .range::<&[u8]>(from.as_slice()..=to.as_slice())
        .map_err(backend)?
    {
        if visit(keys::trailing_trace_id(row.map_err(backend)?.0.value()))? {
            break;
        }
    }
    found.sort_by_key(|t| std::cmp::Reverse(t.start_time()));
    Ok(found)
}

#[async_trait]
impl SpanWriter for EmbeddedStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let cache = Arc::clone(&self.operations);
        let options = self.options;
        self.blocking(move |db| write(db, &cache, options, spans))
            .await
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
        let (query, options) = (query.clone(), self.options);
        self.blocking(move |db| search(db, options, &query)).await
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
                Key::new().u64(unix_nanos(start)).bytes(),
                Key::new().u64(unix_nanos(end_time)).u128(u128::MAX).bytes(),
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
                counts.add_trace(&trace.spans, start, end_time);
            }
            Ok(counts.into_links())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
