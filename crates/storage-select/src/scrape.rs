//! The stores' own figures (the memory store's size, the block store's
//! blocks, the Elasticsearch bulk writer's and the Kafka writer's counts),
//! read when Prometheus scrapes the admin port rather than kept twice.
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use spoor_kafka::WriterStats;
use spoor_storage_elasticsearch::EsStore;
use spoor_storage_embedded::BlockStore;
use spoor_storage_memory::MemoryStore;

/// A metric's name, help and value.
type Figure = (&'static str, &'static str, u64);

/// What one read gives: gauges (a level now) and counters (a total so far).
#[derive(Default)]
struct Figures {
    gauges: Vec<Figure>,
    counters: Vec<Figure>,
}

/// A registry collector reading `figures` at every scrape.
pub(crate) struct Scraped {
    what: &'static str,
    figures: Box<dyn Fn() -> Figures + Send + Sync>,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = (self.figures)();
        for (name, help, value) in figures.gauges {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        for (name, help, value) in figures.counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

pub(crate) fn memory(store: Arc<MemoryStore>) -> Box<Scraped> {
    Box::new(Scraped {
        what: "memory store",
        figures: Box::new(move || {
            let s = store.stats();
            Figures {
                gauges: vec![
                    (
                        "spoor_memory_traces",
                        "Traces held by the memory store",
                        s.traces,
                    ),
                    (
                        "spoor_memory_spans",
                        "Spans held by the memory store",
                        s.spans,
                    ),
                    (
                        "spoor_memory_bytes",
                        "Estimated bytes of span data held by the memory store",
                        s.bytes,
                    ),
                ],
                counters: vec![
                    (
                        "spoor_memory_evicted_traces",
                        "Traces evicted from the memory store to stay within its bounds",
                        s.evicted_traces,
                    ),
                    (
                        "spoor_memory_evicted_spans",
                        "Spans evicted from the memory store to stay within its bounds",
                        s.evicted_spans,
                    ),
                    (
                        "spoor_memory_dropped_spans",
                        "Spans refused because their trace alone would outgrow the memory budget",
                        s.dropped_spans,
                    ),
                ],
            }
        }),
    })
}

pub(crate) fn blocks(store: Arc<BlockStore>) -> Box<Scraped> {
    Box::new(Scraped {
        what: "block store",
        figures: Box::new(move || {
            let s = store.stats();
            Figures {
                gauges: vec![
                    (
                        "spoor_embedded_blocks",
                        "Parquet blocks of the embedded store",
                        s.blocks,
                    ),
                    (
                        "spoor_embedded_frozen_heads",
                        "Cut heads waiting to be written as blocks",
                        s.frozen_heads,
                    ),
                    (
                        "spoor_embedded_head_spans",
                        "Spans in memory (head and cut heads), not yet in a block",
                        s.head_spans,
                    ),
                    (
                        "spoor_embedded_head_bytes",
                        "Estimated bytes of the spans in memory, not yet in a block",
                        s.head_bytes,
                    ),
                    (
                        "spoor_embedded_block_spans",
                        "Spans in blocks",
                        s.block_spans,
                    ),
                    (
                        "spoor_embedded_block_disk_bytes",
                        "Bytes of the block files",
                        s.block_disk_bytes,
                    ),
                    (
                        "spoor_embedded_block_memory_bytes",
                        "Memory the blocks' indexes and Parquet metadata take",
                        s.block_memory_bytes,
                    ),
                ],
                counters: vec![
                    (
                        "spoor_embedded_deleted_spans_retention",
                        "Spans deleted with their blocks past --embedded.retention",
                        s.deleted_by_retention,
                    ),
                    (
                        "spoor_embedded_deleted_spans_quota",
                        "Spans deleted with their blocks over --embedded.max-disk-bytes",
                        s.deleted_by_quota,
                    ),
                    (
                        "spoor_embedded_object_reads",
                        "Read requests to the object store the blocks are kept in",
                        s.object_reads,
                    ),
                    (
                        "spoor_embedded_object_read_bytes",
                        "Bytes read from the object store the blocks are kept in",
                        s.object_read_bytes,
                    ),
                ],
            }
        }),
    })
}

pub(crate) fn elasticsearch(store: Arc<EsStore>) -> Box<Scraped> {
    Box::new(Scraped {
        what: "elasticsearch bulk writer",
        figures: Box::new(move || {
            let s = store.bulk_stats();
            Figures {
                gauges: vec![],
                counters: vec![
                    (
                        "spoor_es_bulk_requests",
                        "Bulk requests sent to Elasticsearch",
                        s.requests.load(Relaxed),
                    ),
                    (
                        "spoor_es_bulk_indexed_documents",
                        "Documents Elasticsearch stored",
                        s.indexed.load(Relaxed),
                    ),
                    (
                        "spoor_es_bulk_retried_documents",
                        "Documents sent again after Elasticsearch refused them for now",
                        s.retried.load(Relaxed),
                    ),
                    (
                        "spoor_es_bulk_failed_documents",
                        "Documents Elasticsearch refused for good or after every retry",
                        s.failed.load(Relaxed),
                    ),
                ],
            }
        }),
    })
}

pub(crate) fn kafka(stats: Arc<WriterStats>) -> Box<Scraped> {
    Box::new(Scraped {
        what: "kafka writer",
        figures: Box::new(move || Figures {
            gauges: vec![],
            counters: vec![
                (
                    "spoor_kafka_spans_delivered",
                    "Spans the Kafka brokers acknowledged",
                    stats.delivered.load(Relaxed),
                ),
                (
                    "spoor_kafka_spans_failed",
                    "Spans Kafka did not acknowledge (the write failed and the client is told)",
                    stats.failed.load(Relaxed),
                ),
            ],
        }),
    })
}
