//! The ingester: consumes spans from Kafka in a consumer group and writes
//! them to storage, at least once.
//!
//! Each assigned partition gets a worker. It gathers messages into batches,
//! writes up to `--ingester.parallelism` messages at once, and stores the
//! offset of a batch only after it and every earlier batch of the partition
//! were written (batches complete in order through `FuturesOrdered`): the
//! stored offset is always the highest contiguous written one, and librdkafka
//! commits stored offsets in the background and at shutdown. A failed write
//! is retried with backoff and the partition waits; an undecodable message is
//! counted (and copied to the dead-letter topic when one is set) and skipped.
//! A crash re-delivers what was not committed; the stores return each span
//! once however often it was written.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use spoor_storage::SpanWriter;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::encoding::Encoding;
use crate::options::ConsumerOptions;

/// Longest wait between retries of a failed write.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often partition lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error("kafka consumer configuration")]
    Config(#[from] crate::options::OptionsError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    partition: i32,
}

#[derive(Default)]
pub struct IngesterMetrics {
    pub consumed: Counter,
    pub spans_written: Counter,
    pub write_failures: Counter,
    pub undecodable: Counter,
    pub dead_lettered: Counter,
    lag: Family<PartitionLabel, Gauge>,
    stored_offset: Family<PartitionLabel, Gauge>,
}

impl IngesterMetrics {
    fn register(self: &Arc<Self>, r: &mut Registry) {
        r.register(
            "spoor_ingester_messages_consumed",
            "Messages read from Kafka",
            self.consumed.clone(),
        );
        r.register(
            "spoor_ingester_spans_written",
            "Spans written to storage",
            self.spans_written.clone(),
        );
        r.register(
            "spoor_ingester_write_failures",
            "Failed storage writes (each is retried; the partition waits)",
            self.write_failures.clone(),
        );
        r.register(
            "spoor_ingester_undecodable_messages",
            "Messages skipped because they could not be decoded",
            self.undecodable.clone(),
        );
        r.register(
            "spoor_ingester_dead_lettered_messages",
            "Undecodable messages copied to the dead-letter topic",
            self.dead_lettered.clone(),
        );
        r.register(
            "spoor_ingester_partition_lag",
            "Messages of the partition not yet written (high watermark minus stored offset)",
            self.lag.clone(),
        );
        r.register(
            "spoor_ingester_stored_offset",
            "Next offset of the partition to commit: every message before it is written",
            self.stored_offset.clone(),
        );
    }
}

/// Partitions taken away by a rebalance, for the dispatch loop to drop.
#[derive(Default)]
pub struct RebalanceContext {
    revoked: Mutex<Vec<i32>>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.revoked.lock().expect("not poisoned");
            revoked.extend(tpl.elements().iter().map(|e| e.partition()));
            tracing::info!(partitions = ?revoked, "partitions revoked");
        }
    }
}

type KafkaConsumer = StreamConsumer<RebalanceContext>;

/// One message as a partition worker needs it.
struct Received {
    offset: i64,
    payload: Vec<u8>,
}

struct Shared {
    consumer: Arc<KafkaConsumer>,
    writer: Arc<dyn SpanWriter>,
    topic: String,
    encoding: Encoding,
    dead_letter: Option<(FutureProducer, String)>,
    batch_size: usize,
    batch_wait: Duration,
    parallelism: usize,
    retry_backoff: Duration,
    metrics: Arc<IngesterMetrics>,
}

struct Worker {
    tx: mpsc::Sender<Received>,
    /// Set when the partition is revoked: a write still retrying gives up.
    cancel: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The partition workers of a running ingester. Should `run` be dropped
/// midway, they are aborted with it, so the consumer they share closes and
/// leaves the group with nothing more stored.
#[derive(Default)]
struct Workers(HashMap<i32, Worker>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in self.0.values() {
            worker.task.abort();
        }
    }
}

pub struct Ingester {
    shared: Arc<Shared>,
}

impl Ingester {
    pub fn new(
        options: &ConsumerOptions,
        writer: Arc<dyn SpanWriter>,
        registry: &mut Registry,
    ) -> Result<Ingester, IngesterError> {
        let consumer: KafkaConsumer = options
            .client_config()?
            .create_with_context(RebalanceContext::default())?;
        let dead_letter = if options.dead_letter_topic.is_empty() {
            None
        } else {
            let producer: FutureProducer = options.dead_letter_config()?.create()?;
            Some((producer, options.dead_letter_topic.clone()))
        };
        let metrics = Arc::new(IngesterMetrics::default());
        metrics.register(registry);
        Ok(Ingester {
            shared: Arc::new(Shared {
                consumer: Arc::new(consumer),
                writer,
                topic: options.topic.clone(),
                encoding: options.encoding,
                dead_letter,
                batch_size: options.batch_size.max(1),
                batch_wait: options.batch_wait,
                parallelism: options.parallelism.max(1),
                retry_backoff: options.retry_backoff.max(Duration::from_millis(1)),
                metrics,
            }),
        })
    }

    pub fn metrics(&self) -> Arc<IngesterMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Consumes until `shutdown` resolves, then lets the partition workers
    /// finish what they hold (a write that keeps failing is abandoned, not
    /// committed) and commits the stored offsets.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), IngesterError> {
        let s = &self.shared;
        s.consumer.subscribe(&[&s.topic])?;
        tracing::info!(topic = %s.topic, "ingester consuming");
        let mut workers = Workers::default();
        let mut lag_tick = tokio::time::interval(LAG_INTERVAL);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = lag_tick.tick() => measure_lag(s, workers.0.keys().copied().collect()).await,
                message = s.consumer.recv() => {
                    let message = match message {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "kafka consumer error");
                            continue;
                        }
                    };
                    s.metrics.consumed.inc();
                    let partition = message.partition();
                    let received = Received {
                        offset: message.offset(),
                        payload: message.payload().unwrap_or_default().to_vec(),
                    };
                    drop(message);
                    drop_revoked(&s.consumer, &mut workers.0);
                    let worker = workers
                        .0
                        .entry(partition)
                        .or_insert_with(|| start_worker(Arc::clone(&self.shared), partition));
                    // a full worker makes the whole consumer wait: backpressure
                    if worker.tx.send(received).await.is_err() {
                        tracing::error!(partition, "partition worker stopped");
                    }
                }
            }
        }
        tracing::info!("ingester stopping: finishing in-flight writes");
        // writes that still fail after the grace period are left for redelivery
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for (_, worker) in workers.0.drain() {
            drop(worker.tx);
            let mut task = worker.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                let _ = worker.cancel.send(true);
                let _ = task.await;
            }
        }
        // The final commit and the consumer's close talk to the brokers and
        // block; they run on their own thread so an unreachable broker
        // cannot hold the process: what is not committed is delivered again.
        drop(workers);
        let shared = self.shared;
        let (closed, done) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            if let Err(e) = shared.consumer.commit_consumer_state(CommitMode::Sync) {
                // nothing stored yet, or the group is gone: offsets stay where they were
                tracing::warn!(error = %e, "final offset commit");
            }
            drop(shared);
            let _ = closed.send(());
        });
        if tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .is_err()
        {
            tracing::warn!(
                "kafka did not confirm the final commit in 10s; the rest is delivered again"
            );
        }
        Ok(())
    }
}

fn drop_revoked(consumer: &KafkaConsumer, workers: &mut HashMap<i32, Worker>) {
    let revoked: Vec<i32> =
        std::mem::take(&mut *consumer.context().revoked.lock().expect("not poisoned"));
    for partition in revoked {
        if let Some(worker) = workers.remove(&partition) {
            // in-flight writes finish; their offsets can no longer be stored
            let _ = worker.cancel.send(true);
        }
    }
}

async fn measure_lag(s: &Shared, partitions: HashSet<i32>) {
    for partition in partitions {
        let consumer = Arc::clone(&s.consumer);
        let topic = s.topic.clone();
        let high = tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, partition, Duration::from_secs(2))
        })
        .await;
        if let Ok(Ok((_, high))) = high {
            let label = PartitionLabel { partition };
            let stored = s.metrics.stored_offset.get_or_create(&label).get();
            s.metrics
                .lag
                .get_or_create(&label)
                .set((high - stored).max(0));
        }
    }
}

fn start_worker(shared: Arc<Shared>, partition: i32) -> Worker {
    let batches_in_flight = shared.parallelism.div_ceil(shared.batch_size).max(1);
    let (tx, rx) = mpsc::channel(shared.batch_size * batches_in_flight);
    let (cancel, cancelled) = watch::channel(false);
    let task = tokio::spawn(partition_worker(
        shared,
        partition,
        rx,
        cancelled,
        batches_in_flight,
    ));
    Worker { tx, cancel, task }
}

async fn partition_worker(
    s: Arc<Shared>,
    partition: i32,
    mut rx: mpsc::Receiver<Received>,
    cancelled: watch::Receiver<bool>,
    batches_in_flight: usize,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            done = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(Some(last_offset)) = done {
                    store_offset(&s, partition, last_offset);
                }
            }
            first = rx.recv(), if open && in_flight.len() < batches_in_flight => {
                let Some(first) = first else {
                    open = false;
                    continue;
                };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + s.batch_wait;
                while batch.len() < s.batch_size {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(m)) => batch.push(m),
                        Ok(None) => {
                            open = false;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                in_flight.push_back(write_batch(Arc::clone(&s), batch, cancelled.clone()));
            }
        }
    }
}

/// Writes one batch, retrying until it is stored; the offset of its last
/// message, or None when cancelled before it was written.
async fn write_batch(
    s: Arc<Shared>,
    batch: Vec<Received>,
    mut cancelled: watch::Receiver<bool>,
) -> Option<i64> {
    let last_offset = batch.last().map(|m| m.offset)?;
    let mut spans = Vec::new();
    for message in &batch {
        match s.encoding.decode(&message.payload) {
            Ok(decoded) => spans.extend(decoded),
            Err(e) => {
                s.metrics.undecodable.inc();
                tracing::warn!(offset = message.offset, error = %e, "skipping undecodable message");
                dead_letter(&s, &message.payload).await;
            }
        }
    }
    let n = spans.len() as u64;
    let mut backoff = s.retry_backoff;
    while !spans.is_empty() {
        match s.writer.write_spans(spans.clone()).await {
            Ok(()) => break,
            Err(e) => {
                s.metrics.write_failures.inc();
                tracing::warn!(error = %spoor_storage::Chain(&e), retry_in = ?backoff, "storage write failed; the partition waits");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancelled.wait_for(|c| *c) => return None,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    s.metrics.spans_written.inc_by(n);
    Some(last_offset)
}

async fn dead_letter(s: &Shared, payload: &[u8]) {
    let Some((producer, topic)) = &s.dead_letter else {
        return;
    };
    let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).payload(payload);
    match producer.send(record, Duration::from_secs(10)).await {
        Ok(_) => {
            s.metrics.dead_lettered.inc();
        }
        Err((e, _)) => tracing::error!(error = %e, "copying to the dead-letter topic failed"),
    }
}

fn store_offset(s: &Shared, partition: i32, last_written: i64) {
    let mut tpl = TopicPartitionList::new();
    let next = last_written + 1;
    if tpl
        .add_partition_offset(&s.topic, partition, Offset::Offset(next))
        .is_err()
    {
        return;
    }
    match s.consumer.store_offsets(&tpl) {
        Ok(()) => {
            s.metrics
                .stored_offset
                .get_or_create(&PartitionLabel { partition })
                .set(next);
        }
        // the partition was revoked meanwhile: its new owner re-reads these
        Err(e) => tracing::debug!(partition, error = %e, "offset not stored"),
    }
}
