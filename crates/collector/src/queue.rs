//! The bounded queue between receivers and storage writers. Its bound is in
//! bytes (the spans' estimated memory, in KiB permits) and, when asked for,
//! also in spans: a batch takes its permits and gives them back once
//! written, so queued plus in-flight spans never exceed either capacity.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use spoor_model::Span;
use spoor_storage::{SpanWriter, StorageError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};
use tokio::task::JoinSet;

use crate::metrics::CollectorMetrics;

struct Item {
    spans: Vec<Span>,
    _permits: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
    /// Told the write's outcome when the sender waits for it.
    done: Option<oneshot::Sender<Result<(), WriteFailure>>>,
}

/// Why (part of) a queued batch was not stored.
#[derive(Debug)]
pub enum WriteFailure {
    /// The rest was stored; these spans never will be (a bound of the store).
    Refused { count: usize, reason: String },
    /// The write failed; the client may retry the batch. A fixed word for
    /// the client: the store's error text is logged, never sent.
    Failed(&'static str),
}

/// The write of a queued batch, for a sender that acknowledges only after it.
pub type Written = oneshot::Receiver<Result<(), WriteFailure>>;

/// What the queue holds at most.
#[derive(Clone, Copy, Debug)]
pub struct QueueBounds {
    /// Estimated bytes of queued and in-flight spans.
    pub bytes: usize,
    /// Spans, when bounded by count too (Jaeger's --collector.queue-size).
    pub spans: Option<usize>,
}

impl QueueBounds {
    /// At most `spans` spans (and a byte bound no test reaches).
    #[cfg(test)]
    pub fn spans(spans: usize) -> Self {
        QueueBounds {
            bytes: 1 << 30,
            spans: Some(spans),
        }
    }
}

/// A semaphore of `capacity` units; a batch larger than the whole of it
/// takes all of it (waits for an empty queue) rather than never fitting.
struct Bound {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Bound {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Bound {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    fn try_take(&self, n: usize) -> Result<OwnedSemaphorePermit, QueueFull> {
        let n = n.clamp(1, self.capacity) as u32;
        Arc::clone(&self.permits)
            .try_acquire_many_owned(n)
            .map_err(|(TryAcquireError::NoPermits | TryAcquireError::Closed)| QueueFull)
    }
}

pub struct SpanQueue {
    kib: Bound,
    spans: Option<Bound>,
    /// Spans acknowledged when queued and not yet written.
    acked_pending: Arc<AtomicUsize>,
    tx: async_channel::Sender<Item>,
    metrics: Arc<CollectorMetrics>,
}

/// The queue is full; the batch was not taken.
#[derive(Debug)]
pub struct QueueFull;

impl SpanQueue {
    /// Takes the batch if there is room for it, without waiting. A batch
    /// larger than the whole queue waits for an empty queue instead. With
    /// `wait`, the answer tells when the batch is written.
    pub fn try_push(&self, spans: Vec<Span>, wait: bool) -> Result<Option<Written>, QueueFull> {
        let bytes: usize = spans.iter().map(Span::estimated_bytes).sum();
        let by_count = match &self.spans {
            Some(bound) => Some(bound.try_take(spans.len())?),
            None => None,
        };
        let permits = (self.kib.try_take(bytes.div_ceil(1024))?, by_count);
        self.metrics.queue_length.inc_by(spans.len() as i64);
        let len = spans.len() as i64;
        let (done, written) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            self.acked_pending.fetch_add(spans.len(), Ordering::Relaxed);
            (None, None)
        };
        self.tx
            .try_send(Item {
                spans,
                _permits: permits,
                done,
            })
            .map_err(|refused| {
                self.metrics.queue_length.dec_by(len);
                if refused.into_inner().done.is_none() {
                    self.acked_pending
                        .fetch_sub(len as usize, Ordering::Relaxed);
                }
                QueueFull
            })?;
        Ok(written)
    }
}

/// Copies of the acknowledged batches being written, one slot per worker.
type InFlight = Arc<std::sync::Mutex<Vec<Option<Vec<Span>>>>>;

/// The writer tasks behind a queue.
pub struct Workers {
    tasks: JoinSet<()>,
    rx: async_channel::Receiver<Item>,
    acked_pending: Arc<AtomicUsize>,
    in_flight: InFlight,
}

/// What shutdown could not write.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Undrained {
    /// Acknowledged spans neither written nor spilled: lost.
    pub lost: usize,
    /// Spans kept in a spill file for the next start.
    pub spilled: usize,
}

impl Workers {
    /// Waits for the workers to write what is queued (the queue closes when
    /// every [`SpanQueue`] is dropped), at most `timeout`. What is still
    /// queued then goes to a spill file in `spill_dir` when there is one.
    pub async fn drain(mut self, timeout: Duration, spill_dir: Option<&Path>) -> Undrained {
        let started = Instant::now();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all).await.is_ok() {
            return Undrained::default();
        }
        // what is still queued is spilled (or lost); the writes in flight
        // get as long again to finish, and are given up after that
        let mut unwritten = Vec::new();
        while let Ok(item) = self.rx.try_recv() {
            // a client waiting for this write is told it failed, and retries
            if item.done.is_none() {
                unwritten.push(item.spans);
            }
        }
        let in_flight = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, in_flight).await.is_err() {
            self.tasks.shutdown().await;
            let mut kept = self.in_flight.lock().expect("in-flight lock");
            unwritten.extend(kept.iter_mut().filter_map(Option::take));
        }
        let acked = self.acked_pending.load(Ordering::Relaxed);
        let n: usize = unwritten.iter().map(Vec::len).sum();
        let spilled = match spill_dir {
            Some(dir) if n > 0 => match crate::spill::write(dir, &unwritten) {
                Ok(path) => {
                    tracing::warn!(spans = n, file = %path.display(), "unwritten spans spilled to disk; they are written at the next start");
                    n
                }
                Err(e) => {
                    tracing::error!(error = %e, "spilling the queue to disk failed");
                    0
                }
            },
            _ => 0,
        };
        let report = Undrained {
            lost: acked.saturating_sub(spilled),
            spilled,
        };
        tracing::warn!(waited = ?started.elapsed(), ?report, "queue not drained before the shutdown deadline");
        report
    }
}

/// Starts `workers` writers. With `keep_in_flight`, each keeps a copy of the
/// acknowledged batch it is writing, so that shutdown can spill it too.
pub fn start(
    bounds: QueueBounds,
    workers: usize,
    writer: Arc<dyn SpanWriter>,
    metrics: Arc<CollectorMetrics>,
    keep_in_flight: bool,
) -> (SpanQueue, Workers) {
    // bounded by the queue's own span and byte accounting
    let (tx, rx) = async_channel::unbounded::<Item>();
    metrics
        .queue_capacity_bytes
        .set(i64::try_from(bounds.bytes).unwrap_or(i64::MAX));
    metrics
        .queue_capacity
        .set(bounds.spans.map_or(-1, |n| n as i64));
    let acked_pending = Arc::new(AtomicUsize::new(0));
    let in_flight: InFlight = Arc::new(std::sync::Mutex::new(vec![None; workers]));
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let rx = rx.clone();
        let in_flight = Arc::clone(&in_flight);
        let acked_pending = Arc::clone(&acked_pending);
        let writer = Arc::clone(&writer);
        let metrics = Arc::clone(&metrics);
        tasks.spawn(async move {
            loop {
                let Ok(item) = rx.recv().await else {
                    return;
                };
                let n = item.spans.len();
                metrics.queue_length.dec_by(n as i64);
                let started = Instant::now();
                let kept = keep_in_flight && item.done.is_none();
                if kept {
                    in_flight.lock().expect("in-flight lock")[worker] = Some(item.spans.clone());
                }
                let result = writer.write_spans(item.spans).await;
                if kept {
                    in_flight.lock().expect("in-flight lock")[worker] = None;
                }
                let result = match result {
                    Ok(()) => {
                        metrics.spans_written.inc_by(n as u64);
                        Ok(())
                    }
                    Err(StorageError::SpansRefused { count, reason }) => {
                        metrics.spans_written.inc_by(n.saturating_sub(count) as u64);
                        metrics.spans_refused_by_storage.inc_by(count as u64);
                        tracing::warn!(spans = count, %reason, "storage refused spans");
                        Err(WriteFailure::Refused { count, reason })
                    }
                    Err(e) => {
                        metrics.write_failures.inc();
                        tracing::error!(error = %spoor_storage::Chain(&e), spans = n, "writing spans to storage failed");
                        // the chain goes to the log above; the client gets its kind
                        Err(WriteFailure::Failed(e.kind()))
                    }
                };
                match item.done {
                    Some(done) => {
                        let _ = done.send(result);
                    }
                    None => {
                        acked_pending.fetch_sub(n, Ordering::Relaxed);
                    }
                }
                metrics
                    .write_latency
                    .observe(started.elapsed().as_secs_f64());
            }
        });
    }
    let queue = SpanQueue {
        kib: Bound::new(bounds.bytes.div_ceil(1024)),
        spans: bounds.spans.map(Bound::new),
        acked_pending: Arc::clone(&acked_pending),
        tx,
        metrics,
    };
    let workers = Workers {
        tasks,
        rx,
        acked_pending,
        in_flight,
    };
    (queue, workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use spoor_model::{KeyValue, Process, SpanId, TraceId};

    struct Stuck;

    #[async_trait::async_trait]
    impl SpanWriter for Stuck {
        async fn write_spans(&self, _: Vec<Span>) -> Result<(), StorageError> {
            std::future::pending().await
        }
    }

    fn span_with_tag_bytes(n: usize) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(1),
            operation_name: "op".into(),
            references: vec![],
            flags: 1,
            start_time: std::time::SystemTime::now(),
            duration: Duration::from_millis(1),
            tags: vec![KeyValue::string("blob", "x".repeat(n))],
            logs: vec![],
            process: Arc::new(Process {
                service_name: "s".into(),
                tags: vec![],
            }),
            warnings: vec![],
        }
    }

    #[tokio::test]
    async fn the_queue_is_bounded_by_the_bytes_it_holds() {
        let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
        let bounds = QueueBounds {
            bytes: 100 * 1024,
            spans: None,
        };
        let (queue, _workers) = start(bounds, 1, Arc::new(Stuck), metrics, false);
        // many small spans fit where a count bound of 2,000 would refuse
        let small: Vec<Span> = (0..100).map(|_| span_with_tag_bytes(10)).collect();
        assert!(queue.try_push(small, false).is_ok());
        assert!(
            queue
                .try_push(vec![span_with_tag_bytes(40 * 1024)], false)
                .is_ok()
        );
        // but the bytes of large ones do not
        assert!(
            queue
                .try_push(vec![span_with_tag_bytes(40 * 1024)], false)
                .is_err()
        );
    }

    #[tokio::test]
    async fn what_shutdown_cannot_write_is_spilled_or_counted_as_lost() {
        for spill in [false, true] {
            let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
            let (queue, workers) =
                start(QueueBounds::spans(100), 1, Arc::new(Stuck), metrics, spill);
            // one batch in flight (stuck), two queued, all acknowledged
            for _ in 0..3 {
                queue
                    .try_push(vec![span_with_tag_bytes(1); 5], false)
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(queue);
            let dir = tempfile::tempdir().unwrap();
            let report = workers
                .drain(Duration::from_millis(100), spill.then_some(dir.path()))
                .await;
            let expected = if spill {
                // the batch in flight too: its writer kept a copy
                Undrained {
                    lost: 0,
                    spilled: 15,
                }
            } else {
                Undrained {
                    lost: 15,
                    spilled: 0,
                }
            };
            assert_eq!(report, expected);
        }
    }
}
