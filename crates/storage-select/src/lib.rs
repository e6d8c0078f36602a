//! Storage selection from configuration. Every backend is built here and
//! handed to the servers as trait objects.
mod scrape;

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use spoor_kafka::{KafkaWriter, ProducerOptions};
use spoor_storage::decorators::{CallObserver, Guarded, Outcome, Policy};
use spoor_storage::{
    Archive, DependencyReader, DependencyWriter, SamplingStore, SpanReader, SpanWriter,
};
use spoor_storage_cassandra::{CassandraArchiveOptions, CassandraOptions, CassandraStore};
use spoor_storage_elasticsearch::{EsArchiveOptions, EsOptions, EsStore};
use spoor_storage_embedded::{
    BlockOptions, BlockStore, EmbeddedOptions, EmbeddedStore, FileSamplingStore, migrate_redb,
};
use spoor_storage_memory::{MemoryConfig, MemorySamplingStore, MemoryStore};

pub const DEFAULT_MEMORY_MAX_TRACES: usize = 100_000;
pub const DEFAULT_MEMORY_MAX_BYTES: usize = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StorageType {
    /// Bounded in-process memory; lost on restart.
    Memory,
    /// Persistent single-node store in --embedded.data-dir (Jaeger's "badger" accepted).
    #[value(alias = "badger")]
    Embedded,
    /// Elasticsearch 7/8 or OpenSearch 2 at --es.server-urls, Jaeger's index layout.
    #[value(alias = "opensearch")]
    Elasticsearch,
    /// Cassandra or ScyllaDB at --cassandra.servers, Jaeger's v004 keyspace.
    #[value(alias = "scylladb")]
    Cassandra,
    /// Collector only: spans go to Kafka (--kafka.producer.*) for spoor-ingester.
    Kafka,
}

#[derive(Args, Clone, Debug)]
pub struct StorageOptions {
    /// Span storage backend (Jaeger's SPAN_STORAGE_TYPE).
    #[arg(
        long = "span-storage.type",
        env = "SPAN_STORAGE_TYPE",
        value_enum,
        default_value = "memory"
    )]
    pub storage_type: StorageType,

    /// Memory store: most traces kept; the oldest are evicted beyond it (0: no count bound).
    #[arg(long = "memory.max-traces", env = "MEMORY_MAX_TRACES", default_value_t = DEFAULT_MEMORY_MAX_TRACES)]
    pub memory_max_traces: usize,

    /// Memory store: approximate bytes of span data kept; the oldest traces are evicted beyond it.
    #[arg(long = "memory.max-bytes", env = "MEMORY_MAX_BYTES", default_value_t = DEFAULT_MEMORY_MAX_BYTES)]
    pub memory_max_bytes: usize,

    /// Embedded store: directory of its data file.
    #[arg(
        long = "embedded.data-dir",
        alias = "badger.directory-value",
        env = "EMBEDDED_DATA_DIR",
        default_value = "./spoor-data"
    )]
    pub embedded_data_dir: std::path::PathBuf,

    /// Embedded store: how long spans are kept (0s: forever); older ones are deleted and the disk given back.
    #[arg(long = "embedded.retention", alias = "badger.span-store-ttl", env = "EMBEDDED_RETENTION", default_value = "72h", value_parser = spoor_model::parse_go_duration)]
    pub embedded_retention: std::time::Duration,

    /// Embedded store: its engine. `blocks`: a write-ahead log with group
    /// commit, an in-memory head and Parquet blocks (docs/decisions/embedded-store.md);
    /// a directory written by the redb engine is migrated to blocks at start.
    /// `redb`: the B-tree store of earlier releases, kept for one release.
    #[arg(long = "embedded.engine", env = "EMBEDDED_ENGINE", value_enum, default_value_t = EmbeddedEngine::Blocks)]
    pub embedded_engine: EmbeddedEngine,

    /// Embedded store, blocks engine: the head is written as a block when its spans take about this many bytes of memory.
    #[arg(long = "embedded.head-bytes", env = "EMBEDDED_HEAD_BYTES", default_value_t = 64 << 20)]
    pub embedded_head_bytes: usize,

    /// Embedded store, blocks engine: ... or when its oldest span arrived this long ago.
    #[arg(long = "embedded.head-age", env = "EMBEDDED_HEAD_AGE", default_value = "5m", value_parser = spoor_model::parse_go_duration)]
    pub embedded_head_age: std::time::Duration,

    /// Embedded store, blocks engine: block files take at most this many bytes, the oldest deleted beyond it (0: no bound).
    #[arg(
        long = "embedded.max-disk-bytes",
        env = "EMBEDDED_MAX_DISK_BYTES",
        default_value_t = 0
    )]
    pub embedded_max_disk_bytes: u64,

    /// Embedded store, redb engine: index tags (fast tag searches, several times the write cost per span).
    #[arg(long = "embedded.index-tags", env = "EMBEDDED_INDEX_TAGS", default_value_t = true, action = clap::ArgAction::Set)]
    pub embedded_index_tags: bool,

    /// Longest one storage call may take (0s: no bound).
    #[arg(long = "span-storage.timeout", env = "SPAN_STORAGE_TIMEOUT", default_value = "30s", value_parser = spoor_model::parse_go_duration)]
    pub timeout: std::time::Duration,

    /// Retries of a storage call that failed for now (timeout, overload, connection); Elasticsearch and Cassandra.
    #[arg(
        long = "span-storage.retries",
        env = "SPAN_STORAGE_RETRIES",
        default_value_t = 2
    )]
    pub retries: u32,

    /// First delay before a retry; doubled each time.
    #[arg(long = "span-storage.retry-backoff", env = "SPAN_STORAGE_RETRY_BACKOFF", default_value = "100ms", value_parser = spoor_model::parse_go_duration)]
    pub retry_backoff: std::time::Duration,

    #[command(flatten)]
    pub elasticsearch: EsOptions,

    #[command(flatten)]
    pub elasticsearch_archive: EsArchiveOptions,

    #[command(flatten)]
    pub cassandra: CassandraOptions,

    #[command(flatten)]
    pub cassandra_archive: CassandraArchiveOptions,
}

/// The opened store, as the servers use it.
#[derive(Clone)]
pub struct Storage {
    pub writer: Arc<dyn SpanWriter>,
    pub reader: Arc<dyn SpanReader>,
    pub dependencies: Arc<dyn DependencyReader>,
    /// Adaptive sampling's shared state.
    pub sampling: Arc<dyn SamplingStore>,
    /// Where `spoor-dependencies` writes links, for stores that keep them
    /// (Elasticsearch, Cassandra); None where links are derived from spans.
    pub dependency_writer: Option<Arc<dyn DependencyWriter>>,
    /// Where archived traces go: a second memory store, `archive/` in the
    /// embedded store's directory (which retention and the disk quota leave
    /// alone), with `--es-archive.enabled` Jaeger's `jaeger-span-archive`
    /// index, with `--cassandra-archive.enabled` a keyspace of its own. None
    /// otherwise (and for the redb engine).
    pub archive: Option<Archive>,
}

impl StorageOptions {
    /// Opens the configured backend behind the timeout/retry policy and
    /// registers its metrics.
    pub async fn open(&self, registry: &mut Registry) -> anyhow::Result<Storage> {
        let raw = self.open_backend(registry).await?;
        let (policy, observer) = self.decorators(registry);
        let guard = |o: &Arc<dyn CallObserver>| Some(Arc::clone(o));
        Ok(Storage {
            writer: Arc::new(Guarded::new(raw.writer, policy, guard(&observer))),
            reader: Arc::new(Guarded::new(raw.reader, policy, guard(&observer))),
            dependencies: Arc::new(Guarded::new(raw.dependencies, policy, guard(&observer))),
            sampling: Arc::new(Guarded::new(raw.sampling, policy, guard(&observer))),
            dependency_writer: raw.dependency_writer,
            archive: raw.archive.map(|a| Archive {
                writer: Arc::new(Guarded::new(a.writer, policy, guard(&observer))),
                reader: Arc::new(Guarded::new(a.reader, policy, guard(&observer))),
            }),
        })
    }

    /// The collector's writer in streaming mode: spans to Kafka, behind the
    /// same timeout/retry policy and metrics as any store.
    pub fn open_kafka_writer(
        &self,
        producer: &ProducerOptions,
        registry: &mut Registry,
    ) -> anyhow::Result<Arc<dyn SpanWriter>> {
        let writer = KafkaWriter::new(producer)
            .map_err(|e| anyhow::anyhow!("while creating the kafka producer: {e}"))?;
        registry.register_collector(scrape::kafka(writer.stats()));
        let (policy, observer) = self.decorators(registry);
        let writer: Arc<dyn SpanWriter> = Arc::new(writer);
        Ok(Arc::new(Guarded::new(writer, policy, Some(observer))))
    }

    fn decorators(&self, registry: &mut Registry) -> (Policy, Arc<dyn CallObserver>) {
        // in-process stores never fail "for now": retrying them would only
        // cost a copy of every batch
        let retries = match self.storage_type {
            StorageType::Memory | StorageType::Embedded => 0,
            StorageType::Elasticsearch | StorageType::Cassandra | StorageType::Kafka => {
                self.retries
            }
        };
        let policy = Policy {
            timeout: self.timeout,
            retries,
            backoff: self.retry_backoff,
        };
        let calls = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "spoor_storage_call_duration_seconds",
            "Storage calls by operation and outcome (ok, retried, failed), with their latency",
            calls.clone(),
        );
        (policy, Arc::new(StorageCalls(calls)))
    }

    async fn open_backend(&self, registry: &mut Registry) -> anyhow::Result<Storage> {
        match self.storage_type {
            StorageType::Kafka => anyhow::bail!(
                "span storage type kafka is write-only: only spoor-collector writes to Kafka; \
                 spoor-ingester and spoor-query use the store the ingester writes to"
            ),
            StorageType::Memory => {
                let store = Arc::new(MemoryStore::new(MemoryConfig {
                    max_traces: self.memory_max_traces,
                    max_bytes: self.memory_max_bytes,
                }));
                registry.register_collector(scrape::memory(Arc::clone(&store)));
                // Jaeger's memory archive: a store of its own, with the same bounds
                let archive = Arc::new(MemoryStore::new(MemoryConfig {
                    max_traces: self.memory_max_traces,
                    max_bytes: self.memory_max_bytes,
                }));
                Ok(Storage {
                    writer: store.clone(),
                    reader: store.clone(),
                    dependencies: store,
                    sampling: Arc::new(MemorySamplingStore::default()),
                    dependency_writer: None,
                    archive: Some(Archive::of(archive)),
                })
            }
            StorageType::Embedded if self.embedded_engine == EmbeddedEngine::Blocks => {
                let dir = &self.embedded_data_dir;
                let options = BlockOptions {
                    head_bytes: self.embedded_head_bytes,
                    head_age: self.embedded_head_age,
                    max_disk_bytes: self.embedded_max_disk_bytes,
                };
                let opened = |e: spoor_storage::StorageError| {
                    anyhow::anyhow!("while opening the embedded store in {}: {e}", dir.display())
                };
                migrate_redb(dir, options).await.map_err(opened)?;
                let store = BlockStore::open(dir, options).await.map_err(opened)?;
                let sampling = FileSamplingStore::open(dir).map_err(opened)?;
                // lives as long as the process
                let _ = store.spawn_retention(self.embedded_retention);
                registry.register_collector(scrape::blocks(Arc::clone(&store)));
                // archived traces: a store of their own, kept until deleted by hand
                let archive = BlockStore::open(
                    &dir.join("archive"),
                    BlockOptions {
                        max_disk_bytes: 0,
                        ..options
                    },
                )
                .await
                .map_err(opened)?;
                Ok(Storage {
                    writer: store.clone(),
                    reader: store.clone(),
                    dependencies: store,
                    sampling: Arc::new(sampling),
                    dependency_writer: None,
                    archive: Some(Archive::of(archive)),
                })
            }
            StorageType::Embedded => {
                let store = Arc::new(
                    EmbeddedStore::open_with(
                        &self.embedded_data_dir,
                        EmbeddedOptions {
                            index_tags: self.embedded_index_tags,
                        },
                    )
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "while opening the embedded store in {}: {e}",
                            self.embedded_data_dir.display()
                        )
                    })?,
                );
                // lives as long as the process
                let _ = store.spawn_retention(self.embedded_retention);
                Ok(Storage {
                    writer: store.clone(),
                    reader: store.clone(),
                    dependencies: store.clone(),
                    sampling: store,
                    dependency_writer: None,
                    archive: None,
                })
            }
            StorageType::Elasticsearch => {
                let config = self.elasticsearch.config()?;
                let store = Arc::new(
                    EsStore::open(&config)
                        .await
                        .context("while opening elasticsearch storage")?,
                );
                registry.register_collector(scrape::elasticsearch(Arc::clone(&store)));
                let archive = if self.elasticsearch_archive.enabled {
                    let config = self.elasticsearch_archive.config()?;
                    let archive = Arc::new(
                        EsStore::open(&config)
                            .await
                            .context("while opening the elasticsearch archive")?,
                    );
                    Some(Archive::of(archive))
                } else {
                    None
                };
                Ok(Storage {
                    sampling: Arc::new(store.sampling_store()),
                    writer: store.clone(),
                    reader: store.clone(),
                    dependencies: store.clone(),
                    dependency_writer: Some(store),
                    archive,
                })
            }
            StorageType::Cassandra => {
                let store = Arc::new(
                    CassandraStore::open(&self.cassandra)
                        .await
                        .context("while opening cassandra storage")?,
                );
                let archive = if self.cassandra_archive.enabled {
                    let options = CassandraOptions::from(&self.cassandra_archive);
                    let archive = Arc::new(
                        CassandraStore::open(&options)
                            .await
                            .context("while opening the cassandra archive")?,
                    );
                    Some(Archive::of(archive))
                } else {
                    None
                };
                Ok(Storage {
                    sampling: Arc::new(store.sampling_store().await?),
                    writer: store.clone(),
                    reader: store.clone(),
                    dependencies: store.clone(),
                    dependency_writer: Some(store),
                    archive,
                })
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbeddedEngine {
    Blocks,
    Redb,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    outcome: &'static str,
}

/// Records each storage call in `spoor_storage_call_duration_seconds`.
struct StorageCalls(Family<CallLabels, Histogram>);

impl CallObserver for StorageCalls {
    fn observe(&self, operation: &'static str, elapsed: std::time::Duration, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Ok => "ok",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
        };
        self.0
            .get_or_create(&CallLabels { operation, outcome })
            .observe(elapsed.as_secs_f64());
    }
}
