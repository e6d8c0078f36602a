//! The block store: the embedded store's log-structured, columnar engine
//! (docs/decisions/embedded-store.md).
//!
//! A write is appended to the write-ahead log (group commit: one fsync for
//! every batch that arrived meanwhile) and then moved into the head, which
//! answers queries at once. When the head outgrows
//! `--embedded.head-bytes` or `--embedded.head-age`, it is cut: the log
//! moves on to a new segment, the head is frozen (still queried) and written
//! as a Parquet block in the background; once the block is in place the
//! frozen head and the log segments it came from are dropped.
//!
//! Writers hold the cut lock shared across "append, then insert", and a cut
//! takes it exclusively, so every span is in the head that matches the log
//! segment it was appended to: a segment is deleted only when everything in
//! it is in a block.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prost::Message;
use spoor_model::{DependencyLink, Span, Trace, TraceId};
use spoor_storage::{
    DependencyCounter, DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter,
    StorageError, TraceQuery, dedupe_spans,
};

use crate::backend;
use crate::block::{self, Block};
use crate::head::Head;
use crate::objects::Objects;
use crate::wal::{self, Wal};

/// Small blocks are merged when at least this many follow one another.
const COMPACT_FAN_IN: usize = 4;
/// A merged block holds about this many spans at most; blocks of fewer than
/// a sixteenth of it are small. A head cut by size makes a block of about
/// 85,000 spans of the tracegen workload, which is left alone: merging
/// blocks that size would write every span twice for little gain. Merges
/// are for the small blocks that cuts by age make when traffic is light.
const COMPACT_SPANS: u64 = 1_000_000;

/// How the block store cuts its head.
#[derive(Clone, Copy, Debug)]
pub struct BlockOptions {
    /// The head is cut when its spans take about this many bytes of memory.
    pub head_bytes: usize,
    /// ... or when its oldest write is this old.
    pub head_age: Duration,
    /// Block files take at most this many bytes; the oldest blocks are
    /// deleted beyond it. 0: no bound but retention's.
    pub max_disk_bytes: u64,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            head_bytes: 64 << 20,
            head_age: Duration::from_secs(300),
            max_disk_bytes: 0,
        }
    }
}

/// Counters a metrics exporter reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    pub blocks: u64,
    /// Cut heads waiting to be written as blocks.
    pub frozen_heads: u64,
    /// Spans and estimated bytes in memory, in the head and the frozen heads.
    pub head_spans: u64,
    pub head_bytes: u64,
    pub block_spans: u64,
    pub block_disk_bytes: u64,
    /// Memory the blocks' indexes and Parquet metadata take.
    pub block_memory_bytes: u64,
    /// Spans deleted with their blocks: past the retention, over the disk quota.
    pub deleted_by_retention: u64,
    pub deleted_by_quota: u64,
    /// Read requests to the blocks' object store, and the bytes fetched.
    pub object_reads: u64,
    pub object_read_bytes: u64,
}

struct Frozen {
    /// The newest log segment whose spans are in this head.
    sealed: u64,
    head: Arc<Head>,
}

struct Parts {
    head: Arc<Head>,
    head_since: Instant,
    /// Cut heads not yet in a block, oldest first.
    frozen: Vec<Frozen>,
    /// Blocks, oldest first.
    blocks: Vec<Arc<Block>>,
}

/// What one query reads: the parts as they were when it began.
struct Snapshot {
    memory: Vec<Arc<Head>>,
    blocks: Vec<Arc<Block>>,
}

pub struct BlockStore {
    /// This store, for the background cuts its writes start.
    me: Weak<BlockStore>,
    wal_dir: PathBuf,
    objects: Arc<Objects>,
    options: BlockOptions,
    wal: Wal,
    cut_lock: tokio::sync::RwLock<()>,
    flushing: tokio::sync::Mutex<()>,
    parts: RwLock<Parts>,
    cutting: AtomicBool,
    next_block: AtomicU64,
    deleted_by_retention: AtomicU64,
    deleted_by_quota: AtomicU64,
}

fn decode(payload: &[u8]) -> Result<Vec<Span>, StorageError> {
    let batch = spoor_proto::api_v2::Batch::decode(payload).map_err(backend)?;
    let (spans, errors) = spoor_proto::spans_from_batch(batch);
    match errors.first() {
        Some((_, e)) => Err(backend(format!("write-ahead log record: {e}"))),
        None => Ok(spans),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

impl BlockStore {
    /// Opens (or creates) the store in `dir`: opens its blocks, replays the
    /// write-ahead log into the head, and starts the task that cuts the head
    /// by age.
    pub async fn open(dir: &Path, options: BlockOptions) -> Result<Arc<BlockStore>, StorageError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| backend(format!("creating {}: {e}", wal_dir.display())))?;
        let objects = Objects::local(&dir.join("blocks"))?;
        let blocks = {
            let objects = Arc::clone(&objects);
            blocking(move || open_blocks(&objects)).await?
        };
        let next_block = blocks.last().map_or(1, |b| b.id + 1);
        let head = Arc::new(Head::default());
        let dir_for_wal = wal_dir.clone();
        let (records, replayed) = blocking(move || {
            let mut batches = Vec::new();
            let n = wal::replay(&dir_for_wal, |payload| {
                batches.push(decode(payload).map_err(std::io::Error::other)?);
                Ok(())
            })
            .map_err(backend)?;
            Ok((n, batches))
        })
        .await?;
        for spans in replayed {
            head.insert(spans);
        }
        if records > 0 {
            tracing::info!(
                records,
                spans = head.stats().0,
                "embedded store: write-ahead log replayed"
            );
        }
        let wal = Wal::open(&wal_dir).map_err(backend)?;
        let store = Arc::new_cyclic(|me| BlockStore {
            me: me.clone(),
            wal_dir,
            objects,
            options,
            wal,
            cut_lock: tokio::sync::RwLock::new(()),
            flushing: tokio::sync::Mutex::new(()),
            parts: RwLock::new(Parts {
                head,
                head_since: Instant::now(),
                frozen: Vec::new(),
                blocks,
            }),
            cutting: AtomicBool::new(false),
            next_block: AtomicU64::new(next_block),
            deleted_by_retention: AtomicU64::new(0),
            deleted_by_quota: AtomicU64::new(0),
        });
        spawn_age_cuts(Arc::downgrade(&store), options.head_age);
        Ok(store)
    }

    fn snapshot(&self) -> Snapshot {
        let parts = self.parts.read().expect("parts lock poisoned");
        let mut memory = vec![Arc::clone(&parts.head)];
        memory.extend(parts.frozen.iter().rev().map(|f| Arc::clone(&f.head)));
        Snapshot {
            memory,
            blocks: parts.blocks.iter().rev().cloned().collect(),
        }
    }

    /// What a metrics exporter reads.
    pub fn stats(&self) -> BlockStats {
        let parts = self.parts.read().expect("parts lock poisoned");
        let (head_spans, head_bytes) = parts.head.stats();
        let (object_reads, object_read_bytes) = self.objects.reads();
        let mut stats = BlockStats {
            object_reads,
            object_read_bytes,
            blocks: parts.blocks.len() as u64,
            frozen_heads: parts.frozen.len() as u64,
            head_spans,
            head_bytes,
            deleted_by_retention: self.deleted_by_retention.load(Ordering::Relaxed),
            deleted_by_quota: self.deleted_by_quota.load(Ordering::Relaxed),
            ..BlockStats::default()
        };
        for f in &parts.frozen {
            let (spans, bytes) = f.head.stats();
            stats.head_spans += spans;
            stats.head_bytes += bytes;
        }
        for b in &parts.blocks {
            stats.block_spans += b.summary.spans;
            stats.block_disk_bytes += b.file_bytes;
            stats.block_memory_bytes += b.memory_bytes() as u64;
        }
        stats
    }

    /// Number of blocks, and of heads waiting to become one.
    pub fn block_counts(&self) -> (usize, usize) {
        let parts = self.parts.read().expect("parts lock poisoned");
        (parts.blocks.len(), parts.frozen.len())
    }

    /// Whether the head should be cut, or frozen heads wait for a block.
    fn cut_is_due(&self) -> bool {
        let parts = self.parts.read().expect("parts lock poisoned");
        let (spans, bytes) = parts.head.stats();
        let head_due = spans > 0
            && (bytes as usize >= self.options.head_bytes
                || parts.head_since.elapsed() >= self.options.head_age);
        head_due || !parts.frozen.is_empty()
    }

    /// Starts a cut in the background unless one is running.
    fn cut_if_due(&self) {
        if !self.cut_is_due() || self.cutting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(store) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = store.flush(false).await {
                tracing::error!(error = %spoor_storage::Chain(&e), "embedded store: writing a block failed; its spans stay in memory and in the write-ahead log, and the write is retried");
            } else if let Err(e) = store.compact().await {
                tracing::error!(error = %spoor_storage::Chain(&e), "embedded store: merging blocks failed; they stay as they are");
            }
            if let Err(e) = store.enforce_disk_quota().await {
                tracing::error!(error = %spoor_storage::Chain(&e), "embedded store: deleting blocks over the disk quota failed");
            }
            store.cutting.store(false, Ordering::Release);
        });
    }

    /// Cuts the head now and writes it (and any head waiting) to a block.
    pub async fn cut(&self) -> Result<(), StorageError> {
        self.flush(true).await
    }

    /// Cuts the head when `force`d or due, then writes every frozen head
    /// to a block, oldest first. One flush runs at a time.
    async fn flush(&self, force: bool) -> Result<(), StorageError> {
        let _one_at_a_time = self.flushing.lock().await;
        {
            let _writers_out = self.cut_lock.write().await;
            let (spans, bytes) = self.parts.read().expect("parts lock poisoned").head.stats();
            let due = force || bytes as usize >= self.options.head_bytes || {
                let parts = self.parts.read().expect("parts lock poisoned");
                parts.head_since.elapsed() >= self.options.head_age
            };
            if spans > 0 && due {
                let sealed = self.wal.rotate().await.map_err(backend)?;
                let mut parts = self.parts.write().expect("parts lock poisoned");
                let head = std::mem::replace(&mut parts.head, Arc::new(Head::default()));
                parts.head_since = Instant::now();
                parts.frozen.push(Frozen { sealed, head });
            }
        }
        loop {
            let next = {
                let parts = self.parts.read().expect("parts lock poisoned");
                parts
                    .frozen
                    .first()
                    .map(|f| (f.sealed, Arc::clone(&f.head)))
            };
            let Some((sealed, head)) = next else {
                return Ok(());
            };
            let id = self.next_block.fetch_add(1, Ordering::Relaxed);
            let objects = Arc::clone(&self.objects);
            let block = blocking(move || {
                block::write_head(&objects, id, &head)?;
                Block::open(&objects, id)
            })
            .await?;
            tracing::debug!(
                block = block.id,
                spans = block.summary.spans,
                "embedded store: block written"
            );
            {
                let mut parts = self.parts.write().expect("parts lock poisoned");
                parts.blocks.push(Arc::new(block));
                parts.frozen.retain(|f| f.sealed != sealed);
            }
            wal::delete_through(&self.wal_dir, sealed).map_err(backend)?;
        }
    }

    /// Merges runs of small blocks, oldest first, until none is left;
    /// returns the blocks merged away. A merged block names the blocks it
    /// replaces, so a crash between writing it and deleting them is finished
    /// at the next open.
    pub async fn compact(&self) -> Result<usize, StorageError> {
        let mut merged = 0;
        loop {
            let _one_at_a_time = self.flushing.lock().await;
            let run = {
                let parts = self.parts.read().expect("parts lock poisoned");
                compaction_run(&parts.blocks)
            };
            let Some(run) = run else {
                return Ok(merged);
            };
            let id = self.next_block.fetch_add(1, Ordering::Relaxed);
            let (inputs, objects) = (run.clone(), Arc::clone(&self.objects));
            let block = blocking(move || {
                merge(&inputs, &objects, id)?;
                Block::open(&objects, id)
            })
            .await?;
            tracing::debug!(
                blocks = run.len(),
                spans = block.summary.spans,
                "embedded store: blocks merged"
            );
            {
                let mut parts = self.parts.write().expect("parts lock poisoned");
                parts.blocks.retain(|b| !run.iter().any(|r| r.id == b.id));
                parts.blocks.push(Arc::new(block));
                parts.blocks.sort_by_key(|b| b.id);
            }
            merged += run.len();
            delete(run).await?;
        }
    }

    /// Deletes the blocks whose spans all started before `cutoff`; returns
    /// the spans deleted.
    pub async fn purge_before(&self, cutoff: SystemTime) -> Result<u64, StorageError> {
        let cutoff = cutoff
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let expired: Vec<Arc<Block>> = {
            let mut parts = self.parts.write().expect("parts lock poisoned");
            let (old, keep) = parts
                .blocks
                .drain(..)
                .partition(|b| b.summary.max_start_ns < cutoff);
            parts.blocks = keep;
            old
        };
        let spans = delete(expired).await?;
        self.deleted_by_retention
            .fetch_add(spans, Ordering::Relaxed);
        Ok(spans)
    }

    /// Deletes the oldest blocks (by their latest span) until the block
    /// files fit `max_disk_bytes`; returns the spans deleted.
    pub async fn enforce_disk_quota(&self) -> Result<u64, StorageError> {
        let quota = self.options.max_disk_bytes;
        if quota == 0 {
            return Ok(0);
        }
        let over: Vec<Arc<Block>> = {
            let mut parts = self.parts.write().expect("parts lock poisoned");
            let mut total: u64 = parts.blocks.iter().map(|b| b.file_bytes).sum();
            let mut by_age: Vec<Arc<Block>> = parts.blocks.clone();
            by_age.sort_by_key(|b| b.summary.max_start_ns);
            let mut over = Vec::new();
            for b in by_age {
                if total <= quota {
                    break;
                }
                total -= b.file_bytes;
                over.push(b);
            }
            parts.blocks.retain(|b| !over.iter().any(|o| o.id == b.id));
            over
        };
        let blocks = over.len();
        let spans = delete(over).await?;
        if spans > 0 {
            tracing::warn!(
                spans,
                blocks,
                quota,
                "embedded store: oldest blocks deleted to stay within --embedded.max-disk-bytes"
            );
        }
        self.deleted_by_quota.fetch_add(spans, Ordering::Relaxed);
        Ok(spans)
    }

    /// Deletes expired blocks now and then; None when keeping forever.
    pub fn spawn_retention(
        self: &Arc<Self>,
        retention: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let store = Arc::downgrade(self);
        crate::spawn_retention(retention, move |cutoff| {
            let store = store.upgrade();
            async move {
                match store {
                    Some(s) => Some(s.purge_before(cutoff).await),
                    None => None,
                }
            }
        })
    }

    async fn trace_in(snapshot: &Snapshot, id: TraceId) -> Result<Option<Trace>, StorageError> {
        let mut spans = Vec::new();
        for m in &snapshot.memory {
            spans.extend(m.trace(id));
        }
        let holding: Vec<Arc<Block>> = snapshot
            .blocks
            .iter()
            .filter(|b| b.trace_start(id).is_some())
            .cloned()
            .collect();
        if !holding.is_empty() {
            let found = blocking(move || {
                let mut spans = Vec::new();
                for b in holding {
                    spans.extend(b.trace(id)?);
                }
                Ok(spans)
            })
            .await?;
            spans.extend(found);
        }
        if spans.is_empty() {
            return Ok(None);
        }
        dedupe_spans(&mut spans);
        Ok(Some(Trace {
            spans,
            warnings: vec![],
        }))
    }

    /// The start of trace `id` over every part: its earliest span.
    fn trace_start(snapshot: &Snapshot, id: TraceId) -> Option<SystemTime> {
        let memory = snapshot.memory.iter().filter_map(|m| m.trace_start(id));
        let blocks = snapshot.blocks.iter().filter_map(|b| b.trace_start(id));
        memory.chain(blocks).min()
    }

    async fn search(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        query.validate()?;
        let limit = query.limit();
        let snapshot = self.snapshot();
        let mut candidates: Vec<(TraceId, SystemTime)> = Vec::new();
        for m in &snapshot.memory {
            candidates.extend(m.search(query, limit));
        }
        // newest blocks first; a block whose spans all started before the
        // `limit` newest traces found so far cannot change the answer
        let mut blocks = snapshot.blocks.clone();
        blocks.sort_by_key(|b| std::cmp::Reverse(b.summary.max_start_ns));
        let q = query.clone();
        let candidates = blocking(move || {
            let mut found = candidates;
            for b in blocks {
                if found.len() >= limit {
                    let mut starts: Vec<SystemTime> = found.iter().map(|(_, s)| *s).collect();
                    starts.sort_unstable_by(|a, b| b.cmp(a));
                    let newest_max = UNIX_EPOCH + Duration::from_nanos(b.summary.max_start_ns);
                    if starts[limit - 1] > newest_max {
                        break;
                    }
                }
                found.extend(b.search(&q, limit)?);
            }
            Ok(found)
        })
        .await?;
        // a trace found in several parts ranks by its start over all of them
        let mut seen = BTreeSet::new();
        let mut ranked: Vec<(SystemTime, TraceId)> = Vec::new();
        for (id, start) in candidates {
            if seen.insert(id) {
                let start = if snapshot.memory.len() + snapshot.blocks.len() > 1 {
                    Self::trace_start(&snapshot, id).unwrap_or(start)
                } else {
                    start
                };
                ranked.push((start, id));
            }
        }
        ranked.sort_by(|a, b| b.cmp(a));
        ranked.truncate(limit);
        Ok(ranked.into_iter().map(|(_, id)| id).collect())
    }
}

/// Deletes blocks that have left the store; returns the spans they held.
/// A block a query still reads is deleted when that query is done with it.
async fn delete(blocks: Vec<Arc<Block>>) -> Result<u64, StorageError> {
    let mut spans = 0;
    for b in blocks {
        spans += b.summary.spans;
        b.retire();
        if let Ok(unshared) = Arc::try_unwrap(b) {
            unshared.delete().await?;
        }
    }
    Ok(spans)
}

/// The oldest run of at least `COMPACT_FAN_IN` consecutive small blocks,
/// at most `COMPACT_SPANS` spans in all.
fn compaction_run(blocks: &[Arc<Block>]) -> Option<Vec<Arc<Block>>> {
    let small = |b: &Arc<Block>| b.summary.spans < COMPACT_SPANS / 16;
    let mut run: Vec<Arc<Block>> = Vec::new();
    let mut spans = 0;
    for b in blocks {
        if !small(b) || spans + b.summary.spans > COMPACT_SPANS {
            if run.len() >= COMPACT_FAN_IN {
                return Some(run);
            }
            run.clear();
            spans = 0;
            if !small(b) {
                continue;
            }
        }
        spans += b.summary.spans;
        run.push(Arc::clone(b));
    }
    (run.len() >= COMPACT_FAN_IN).then_some(run)
}

/// Writes the spans of `inputs` to one block at `path`, in trace id order
/// (each input is in that order already: a k-way merge), one batch of each
/// input in memory at a time.
fn merge(inputs: &[Arc<Block>], objects: &Arc<Objects>, id: u64) -> Result<(), StorageError> {
    let mut cursors = Vec::new();
    for b in inputs {
        cursors.push((b.batches()?, std::collections::VecDeque::new()));
    }
    let mut sample = Vec::new();
    for (batches, buffer) in &mut cursors {
        if let Some(batch) = batches.next() {
            buffer.extend(batch?);
        }
        sample.extend(
            buffer
                .iter()
                .take(block::SAMPLE_SPANS / inputs.len())
                .cloned(),
        );
    }
    let replaces = inputs.iter().map(|b| b.id).collect();
    let mut writer = block::BlockWriter::create(objects, id, &sample, replaces)?;
    drop(sample);
    loop {
        for (batches, buffer) in &mut cursors {
            if buffer.is_empty()
                && let Some(batch) = batches.next()
            {
                buffer.extend(batch?);
            }
        }
        let Some(next) = cursors
            .iter()
            .filter_map(|(_, buffer)| buffer.front().map(|s: &Span| s.trace_id))
            .min()
        else {
            break;
        };
        for (batches, buffer) in &mut cursors {
            // a trace's rows may run past the end of a batch
            loop {
                while buffer.front().is_some_and(|s| s.trace_id == next) {
                    writer.push(&buffer.pop_front().expect("checked"))?;
                }
                if !buffer.is_empty() {
                    break;
                }
                match batches.next() {
                    Some(batch) => buffer.extend(batch?),
                    None => break,
                }
                if buffer.front().is_none_or(|s| s.trace_id != next) {
                    break;
                }
            }
        }
    }
    writer.finish()?;
    Ok(())
}

fn block_number(name: &str) -> Option<u64> {
    name.strip_suffix(".parquet")?.parse().ok()
}

/// Opens every block, oldest first.
fn open_blocks(objects: &Arc<Objects>) -> Result<Vec<Arc<Block>>, StorageError> {
    let mut ids: Vec<u64> = objects
        .list()?
        .iter()
        .filter_map(|(at, _)| block_number(at.filename()?))
        .collect();
    ids.sort_unstable();
    let mut blocks: Vec<Arc<Block>> = ids
        .iter()
        .map(|id| {
            Block::open(objects, *id)
                .map(Arc::new)
                .map_err(|e| backend(format!("block {id}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // a merge that wrote its block but did not delete its inputs: finish it
    let replaced: Vec<u64> = blocks
        .iter()
        .flat_map(|b| b.summary.replaces.clone())
        .collect();
    for b in blocks.iter().filter(|b| replaced.contains(&b.id)) {
        tracing::info!(
            block = b.id,
            "embedded store: deleting a block already merged into another"
        );
        objects.delete(&Objects::location(b.id))?;
    }
    blocks.retain(|b| !replaced.contains(&b.id));
    Ok(blocks)
}

fn spawn_age_cuts(store: Weak<BlockStore>, age: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((age / 4).max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else { return };
            store.cut_if_due();
        }
    });
}

#[async_trait]
impl SpanWriter for BlockStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let payload = spoor_proto::encode_batch(&spans);
        {
            let _in_this_head = self.cut_lock.read().await;
            self.wal.append(payload).await.map_err(backend)?;
            let head = Arc::clone(&self.parts.read().expect("parts lock poisoned").head);
            head.insert(spans);
        }
        self.cut_if_due();
        Ok(())
    }
}

#[async_trait]
impl SpanReader for BlockStore {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        BlockStore::trace_in(&self.snapshot(), trace_id).await
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        let snapshot = self.snapshot();
        let mut services = BTreeSet::new();
        for m in &snapshot.memory {
            services.extend(m.services());
        }
        for b in &snapshot.blocks {
            services.extend(b.summary.operations.keys().cloned());
        }
        Ok(services.into_iter().collect())
    }

    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        let snapshot = self.snapshot();
        let mut ops = BTreeSet::new();
        for m in &snapshot.memory {
            ops.extend(m.operations(query));
        }
        for b in &snapshot.blocks {
            ops.extend(
                b.summary
                    .operations()
                    .filter(|(service, op)| {
                        *service == query.service_name
                            && query.span_kind.is_none_or(|k| k == op.span_kind)
                    })
                    .map(|(_, op)| op),
            );
        }
        let mut ops: Vec<Operation> = ops.into_iter().collect();
        ops.sort_by(|a, b| (&a.name, a.span_kind).cmp(&(&b.name, b.span_kind)));
        Ok(ops)
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        let snapshot = self.snapshot();
        let mut traces = Vec::new();
        for id in self.search(query).await? {
            traces.extend(BlockStore::trace_in(&snapshot, id).await?);
        }
        Ok(traces)
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        self.search(query).await
    }
}

#[async_trait]
impl DependencyReader for BlockStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        let snapshot = self.snapshot();
        let mut counter = DependencyCounter::default();
        let start = end_time.checked_sub(lookback).unwrap_or(UNIX_EPOCH);
        for m in &snapshot.memory {
            m.add_calls(&mut counter, start, end_time);
        }
        let blocks = snapshot.blocks;
        let counter = blocking(move || {
            for b in blocks {
                b.calls(start, end_time, &mut counter)?;
            }
            Ok(counter)
        })
        .await?;
        Ok(counter.into_links())
    }
}
