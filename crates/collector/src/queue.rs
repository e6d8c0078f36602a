//! The bounded queue between receivers and storage writers. Its bound is in
//! spans: a batch takes one permit per span and gives them back once written,
//! so queued plus in-flight spans never exceed the capacity.
use std::sync::Arc;
use std::time::{Duration, Instant};

use spoor_model::Span;
use spoor_storage::{SpanWriter, StorageError};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::metrics::CollectorMetrics;

struct Item {
    spans: Vec<Span>,
    _permit: OwnedSemaphorePermit,
    /// Told the write's outcome when the sender waits for it.
    done: Option<oneshot::Sender<Result<(), WriteFailure>>>,
}

/// Why (part of) a queued batch was not stored.
#[derive(Debug)]
pub enum WriteFailure {
    /// The rest was stored; these spans never will be (a bound of the store).
    Refused { count: usize, reason: String },
    /// The write failed; the client may retry the batch.
    Failed(String),
}

/// The write of a queued batch, for a sender that acknowledges only after it.
pub type Written = oneshot::Receiver<Result<(), WriteFailure>>;

pub struct SpanQueue {
    permits: Arc<Semaphore>,
    capacity: usize,
    tx: mpsc::UnboundedSender<Item>,
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
        let n = spans.len().clamp(1, self.capacity) as u32;
        let permit = match Arc::clone(&self.permits).try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => return Err(QueueFull),
        };
        self.metrics.queue_length.inc_by(spans.len() as i64);
        let len = spans.len() as i64;
        let (done, written) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.tx
            .send(Item {
                spans,
                _permit: permit,
                done,
            })
            .map_err(|_| {
                self.metrics.queue_length.dec_by(len);
                QueueFull
            })?;
        Ok(written)
    }
}

/// The writer tasks behind a queue.
pub struct Workers {
    tasks: JoinSet<()>,
}

impl Workers {
    /// Waits for the workers to write what is queued (the queue closes when
    /// every [`SpanQueue`] is dropped), at most `timeout`.
    pub async fn drain(mut self, timeout: Duration) {
        let started = Instant::now();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!(waited = ?started.elapsed(), "queue not drained before the deadline");
        }
    }
}

pub fn start(
    capacity: usize,
    workers: usize,
    writer: Arc<dyn SpanWriter>,
    metrics: Arc<CollectorMetrics>,
) -> (SpanQueue, Workers) {
    let (tx, rx) = mpsc::unbounded_channel::<Item>();
    let rx = Arc::new(Mutex::new(rx));
    metrics.queue_capacity.set(capacity as i64);
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let rx = Arc::clone(&rx);
        let writer = Arc::clone(&writer);
        let metrics = Arc::clone(&metrics);
        tasks.spawn(async move {
            loop {
                let Some(item) = rx.lock().await.recv().await else {
                    return;
                };
                let n = item.spans.len();
                metrics.queue_length.dec_by(n as i64);
                let started = Instant::now();
                let result = match writer.write_spans(item.spans).await {
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
                        tracing::error!(error = %e, spans = n, "writing spans to storage failed");
                        Err(WriteFailure::Failed(e.to_string()))
                    }
                };
                if let Some(done) = item.done {
                    let _ = done.send(result);
                }
                metrics
                    .write_latency
                    .observe(started.elapsed().as_secs_f64());
            }
        });
    }
    let queue = SpanQueue {
        permits: Arc::new(Semaphore::new(capacity)),
        capacity,
        tx,
        metrics,
    };
    (queue, Workers { tasks })
}
