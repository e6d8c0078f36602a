//! The collector's span writer in streaming mode: one message per span,
//! keyed by trace id. A write returns once the brokers acknowledged every
//! span (with `required-acks`), so the collector's bounded queue holds spans
//! while Kafka is slow instead of memory growing elsewhere.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use spoor_model::Span;
use spoor_storage::{SpanWriter, StorageError};

use crate::encoding::{Encoding, key};
use crate::options::ProducerOptions;

#[derive(Debug, Default)]
pub struct WriterStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

pub struct KafkaWriter {
    producer: FutureProducer,
    topic: String,
    encoding: Encoding,
    timeout: Duration,
    stats: Arc<WriterStats>,
}

impl KafkaWriter {
    pub fn new(options: &ProducerOptions) -> Result<KafkaWriter, StorageError> {
        let producer: FutureProducer = options
            .client_config()
            .map_err(|e| StorageError::backend("kafka producer options", e))?
            .create()
            .map_err(|e| StorageError::backend("creating the kafka producer", e))?;
        Ok(KafkaWriter {
            producer,
            topic: options.topic.clone(),
            encoding: options.encoding,
            timeout: options.timeout,
            stats: Arc::default(),
        })
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }
}

#[async_trait]
impl SpanWriter for KafkaWriter {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let deliveries = spans.iter().map(|span| {
            let payload = self.encoding.encode(span);
            let key = key(span);
            async move {
                let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
                self.producer
                    .send(record, self.timeout)
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            }
        });
        let results = join_all(deliveries).await;
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        self.stats
            .delivered
            .fetch_add((results.len() - failed.len()) as u64, Ordering::Relaxed);
        self.stats
            .failed
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        match failed.first() {
            None => Ok(()),
            // the client may send the batch again: duplicates are harmless downstream
            Some(e) => Err(StorageError::unavailable(
                format!("kafka refused {} of {} spans", failed.len(), results.len()),
                e.to_string(),
            )),
        }
    }
}
