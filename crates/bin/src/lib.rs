//! Command lines of the Spoor binaries. Each `main` parses one of these and
//! calls its `run`; everything else lives in the library crates.

// mimalloc: the span path allocates many small, short-lived objects; it beat
// glibc malloc on ingest CPU and memory per stored span (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed and unused this long is given back to the OS. mimalloc's
/// default, 1 s, is shorter than a span's life in the queue and head: the
/// pages went back and were faulted in again, zeroed by the kernel (9 % of
/// the collector's CPU, docs/benchmarks.md). Ten seconds keeps them for reuse
/// and still returns what a burst left behind.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Sets the allocator's options; called first thing by the binaries that
/// carry spans (collector, ingester, query, all-in-one).
pub fn tune_allocator() {
    // SAFETY: mi_option_set stores a value in mimalloc's option table; it
    // takes no pointers and is safe to call at any time from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// A Spoor binary: its command line, how it logs, and what it does. Every
/// `main` is `spoor_bin::main::<ItsCli>()`.
pub trait Tool: clap::Parser {
    /// Carries spans, so its allocator is tuned for them.
    const CARRIES_SPANS: bool = false;

    fn run(self) -> impl std::future::Future<Output = anyhow::Result<()>>;

    /// The log level, and the file of the audit trail where there is one.
    fn logging(&self) -> (&str, Option<&std::path::Path>);
}

/// Parses `T`'s flags, environment and config file, starts logging and runs
/// it on a multi-threaded runtime.
pub fn main<T: Tool>() -> anyhow::Result<()> {
    if T::CARRIES_SPANS {
        tune_allocator();
    }
    let cli: T = spoor_server::config::parse()?;
    let (level, audit_file) = cli.logging();
    spoor_server::telemetry::init_logging(level, audit_file)?;
    tokio::runtime::Runtime::new()?.block_on(cli.run())
}

pub mod cassandra_schema;
pub mod dependencies_job;
pub mod es_index;
mod in_process;
pub mod operator;
use std::path::PathBuf;

use clap::{Args, Parser};
use spoor_agent::{Agent, AgentOptions};
use spoor_collector::{Collector, CollectorOptions};
use spoor_query::{QueryOptions, QueryServer};
use std::sync::Arc;

use spoor_kafka::{ConsumerOptions, Ingester, ProducerOptions};
use spoor_sampling::{Sampling, SamplingConfigType, SamplingOptions};
use spoor_server::Registry;
use spoor_server::lifecycle::{AdminHttpTls, AdminPort, run_with_admin};
use spoor_server::net::parse_host_port;
use spoor_server::serve::{ServeOptions, Serving};
use spoor_storage::SamplingStore;
use spoor_storage_memory::MemorySamplingStore;
use spoor_storage_select::{StorageOptions, StorageType};

/// Options every binary has.
#[derive(Args, Clone, Debug)]
pub struct CommonOptions {
    /// A YAML, TOML or JSON file of options, keyed by flag name; flags and environment win over it.
    #[arg(long = "config-file", env = "SPOOR_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Minimum log level: error, warn, info, debug or trace (RUST_LOG overrides).
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Options every server binary has: the common ones, the admin port and how
/// connections are served.
#[derive(Args, Clone, Debug)]
pub struct ServerOptions {
    #[command(flatten)]
    pub common: CommonOptions,

    /// Admin port: health on /, Prometheus metrics on /metrics (each
    /// binary's default is Jaeger's for it).
    #[arg(
        id = "admin.http.host-port",
        long = "admin.http.host-port",
        env = "ADMIN_HTTP_HOST_PORT"
    )]
    pub admin_host_port: String,

    #[command(flatten)]
    pub admin_tls: AdminHttpTls,

    /// File the audit trail is appended to, one JSON object a line: every
    /// refused request, and each read (path and query) with who made it
    /// when authentication is on. Without it those lines go to stderr.
    #[arg(long = "audit.log-file", env = "AUDIT_LOG_FILE")]
    pub audit_log_file: Option<PathBuf>,

    #[command(flatten)]
    pub serve: ServeOptions,
}

impl ServerOptions {
    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        (&self.common.log_level, self.audit_log_file.as_deref())
    }

    fn admin(&self) -> anyhow::Result<AdminPort> {
        Ok(AdminPort {
            addr: parse_host_port(&self.admin_host_port)?,
            tls: self.admin_tls.acceptor()?,
        })
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "spoor-agent",
    version,
    about = "Receives spans from Jaeger clients over UDP and forwards them to collectors",
    mut_arg("admin.http.host-port", |a| a.default_value(":14271").required(false))
)]
pub struct AgentCli {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub agent: AgentOptions,
}

#[derive(Parser, Debug)]
#[command(
    name = "spoor-collector",
    version,
    about = "Receives spans (Jaeger gRPC, OTLP) and writes them to storage",
    mut_arg("admin.http.host-port", |a| a.default_value(":14269").required(false))
)]
pub struct CollectorCli {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub storage: StorageOptions,
    #[command(flatten)]
    pub collector: CollectorOptions,
    #[command(flatten)]
    pub spm: SpmOptions,
    #[command(flatten)]
    pub sampling: SamplingOptions,
    /// Where spans go with --span-storage.type=kafka.
    #[command(flatten)]
    pub kafka: ProducerOptions,
}

#[derive(Parser, Debug)]
#[command(
    name = "spoor-ingester",
    version,
    about = "Consumes spans from Kafka and writes them to storage, at least once",
    mut_arg("admin.http.host-port", |a| a.default_value(":14270").required(false))
)]
pub struct IngesterCli {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub storage: StorageOptions,
    #[command(flatten)]
    pub kafka: ConsumerOptions,
}

#[derive(Parser, Debug)]
#[command(
    name = "spoor-query",
    version,
    about = "Serves Jaeger's query API over HTTP and gRPC",
    mut_arg("admin.http.host-port", |a| a.default_value(":16687").required(false))
)]
pub struct QueryCli {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub storage: StorageOptions,
    #[command(flatten)]
    pub query: QueryOptions,
}

#[derive(Parser, Debug)]
#[command(
    name = "spoor-all-in-one",
    version,
    about = "Agent, collector and query in one process on an in-process store: the quick start",
    mut_arg("admin.http.host-port", |a| a.default_value(":14269").required(false))
)]
pub struct AllInOneCli {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub storage: StorageOptions,
    /// The agent's options; it always reports to this process's own collector.
    #[command(flatten)]
    pub agent: AgentOptions,
    #[command(flatten)]
    pub collector: CollectorOptions,
    #[command(flatten)]
    pub spm: SpmOptions,
    #[command(flatten)]
    pub sampling: SamplingOptions,
    #[command(flatten)]
    pub query: QueryOptions,
    /// Streaming demo: the collector writes to Kafka (--kafka.producer.*) and
    /// an ingester in this process consumes it (--kafka.consumer.*) into the
    /// span storage the query reads.
    #[arg(
        long = "all-in-one.streaming",
        env = "ALL_IN_ONE_STREAMING",
        default_value_t = false
    )]
    pub streaming: bool,
    #[command(flatten)]
    pub kafka_producer: ProducerOptions,
    #[command(flatten)]
    pub kafka_consumer: ConsumerOptions,
}

/// Service performance monitoring: RED metrics (calls, errors, latencies
/// per service, operation and span kind) the collector computes from the
/// spans it takes; the query of the same process answers `/api/metrics/*`
/// from them, and the admin port exports them for Prometheus.
#[derive(Args, Clone, Debug)]
pub struct SpmOptions {
    /// Compute RED metrics.
    #[arg(long = "spm.enabled", env = "SPM_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// How long RED metrics are kept, in one-minute steps.
    #[arg(long = "spm.retention", env = "SPM_RETENTION", default_value = "24h", value_parser = spoor_model::parse_go_duration)]
    pub retention: std::time::Duration,
    /// Most (service, operation, span kind) series; spans of others are
    /// counted in spoor_spm_spans_dropped_total.
    #[arg(
        long = "spm.max-series",
        env = "SPM_MAX_SERIES",
        default_value_t = 2_000
    )]
    pub max_series: usize,
}

/// The RED metrics and, with the embedded store, the file they are kept in
/// (`spm.json` in its directory: written every minute and at shutdown, read
/// at start), so they outlive a restart as its spans do.
struct Spm {
    red: Arc<spoor_red::Red>,
    file: Option<std::path::PathBuf>,
}

impl Spm {
    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.red.snapshot())?;
        std::fs::rename(&tmp, path)
    }
}

impl SpmOptions {
    /// None when off.
    fn open(&self, storage: &StorageOptions) -> anyhow::Result<Option<Arc<Spm>>> {
        if !self.enabled {
            return Ok(None);
        }
        let options = spoor_red::RedOptions {
            retention: self.retention,
            max_series: self.max_series,
        };
        if storage.storage_type != StorageType::Embedded {
            let red = Arc::new(spoor_red::Red::new(options));
            return Ok(Some(Arc::new(Spm { red, file: None })));
        }
        let path = storage.embedded_data_dir.join("spm.json");
        let red = match std::fs::read(&path) {
            Ok(bytes) => spoor_red::Red::restore(options, &bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, path = %path.display(), "RED metrics unreadable; starting empty");
                spoor_red::Red::new(options)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => spoor_red::Red::new(options),
            Err(e) => anyhow::bail!("while reading {}: {e}", path.display()),
        };
        let spm = Arc::new(Spm {
            red: Arc::new(red),
            file: Some(path),
        });
        Ok(Some(spm))
    }
}

impl Spm {
    /// Saves the metrics every minute and once more at shutdown, where they
    /// are kept, as a task of the process that shutdown waits for.
    fn keep(spm: &Option<Arc<Spm>>, serving: &Serving) {
        let Some(spm) = spm.clone().filter(|s| s.file.is_some()) else {
            return;
        };
        let shutdown = serving.shutdown();
        serving.spawn(async move {
            let mut tick = tokio::time::interval(spoor_red::STEP);
            tick.tick().await;
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    () = shutdown.clone().wait() => true,
                };
                let saving = Arc::clone(&spm);
                match tokio::task::spawn_blocking(move || saving.save()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "RED metrics not saved"),
                    Err(e) => tracing::warn!(error = %e, "RED metrics not saved"),
                }
                if last {
                    return;
                }
            }
        });
    }
}

/// The address to dial a listener bound to `addr`: loopback for a wildcard bind.
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The query server over the opened storage's span and dependency readers.
async fn bind_query(
    options: QueryOptions,
    storage: &spoor_storage_select::Storage,
    red: Option<Arc<spoor_red::Red>>,
    registry: &mut Registry,
) -> anyhow::Result<QueryServer> {
    QueryServer::bind(
        options,
        Arc::clone(&storage.reader),
        Arc::clone(&storage.dependencies),
        storage.archive.clone(),
        red,
        registry,
    )
    .await
}

impl Tool for AgentCli {
    async fn run(self) -> anyhow::Result<()> {
        let mut registry = Registry::default();
        let agent = Agent::bind(self.agent, &mut registry).await?;
        tracing::info!(addrs = ?agent.local_addrs(), "agent listening");
        run_with_admin(
            self.server.admin()?,
            self.server.serve.clone(),
            registry,
            |stop| agent.run(stop),
        )
        .await
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        self.server.logging()
    }
}

/// The embedded store promises that an acknowledged span survives a crash,
/// and the memory store tells a client which spans it would not keep (a
/// trace over its bound): their collectors answer after the write unless
/// told otherwise. Other stores acknowledge when queued, as Jaeger does.
fn ack_after_write_by_default(
    mut options: CollectorOptions,
    storage: &StorageOptions,
) -> CollectorOptions {
    if options.ack_after_write.is_none() {
        options.ack_after_write = Some(matches!(
            storage.storage_type,
            StorageType::Embedded | StorageType::Memory
        ));
    }
    if options.spill_dir.is_none() && storage.storage_type == StorageType::Embedded {
        options.spill_dir = Some(storage.embedded_data_dir.join("spill"));
    }
    options
}

impl Tool for CollectorCli {
    const CARRIES_SPANS: bool = true;

    async fn run(self) -> anyhow::Result<()> {
        let mut registry = Registry::default();
        let (writer, sampling_store): (_, Arc<dyn SamplingStore>) = if self.storage.storage_type
            == StorageType::Kafka
        {
            if self.sampling.config_type == SamplingConfigType::Adaptive {
                anyhow::bail!(
                    "adaptive sampling needs a shared sampling store; with --span-storage.type=kafka \
                         use --sampling.config-type=file"
                );
            }
            let writer = self.storage.open_kafka_writer(&self.kafka, &mut registry)?;
            // file strategies only: nothing is shared through this store
            (writer, Arc::new(MemorySamplingStore::default()))
        } else {
            let storage = self.storage.open(&mut registry).await?;
            (storage.writer, storage.sampling)
        };
        let sampling = Sampling::start(self.sampling, sampling_store).await?;
        sampling.register_metrics(&mut registry);
        let collector_options = ack_after_write_by_default(self.collector, &self.storage);
        let spm = self.spm.open(&self.storage)?;
        let collector = Collector::bind(
            collector_options,
            writer,
            &sampling,
            spm.as_ref().map(|s| Arc::clone(&s.red)),
            &mut registry,
        )
        .await?;
        tracing::info!(addrs = ?collector.local_addrs(), "collector listening");
        let result = run_with_admin(
            self.server.admin()?,
            self.server.serve.clone(),
            registry,
            |stop| {
                Spm::keep(&spm, &stop);
                collector.run(stop)
            },
        )
        .await;
        sampling.stop().await;
        result
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        self.server.logging()
    }
}

impl Tool for IngesterCli {
    const CARRIES_SPANS: bool = true;

    async fn run(self) -> anyhow::Result<()> {
        let mut registry = Registry::default();
        let storage = self.storage.open(&mut registry).await?;
        let ingester = Ingester::new(&self.kafka, Arc::clone(&storage.writer), &mut registry)?;
        run_with_admin(
            self.server.admin()?,
            self.server.serve.clone(),
            registry,
            |stop| async move { Ok(ingester.run(stop.shutdown().wait()).await?) },
        )
        .await
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        self.server.logging()
    }
}

impl Tool for QueryCli {
    const CARRIES_SPANS: bool = true;

    async fn run(self) -> anyhow::Result<()> {
        let mut registry = Registry::default();
        let storage = self.storage.open(&mut registry).await?;
        // no collector here: /api/metrics/* answers as Jaeger without a metrics backend
        let query = bind_query(self.query, &storage, None, &mut registry).await?;
        tracing::info!(addrs = ?query.local_addrs(), "query listening");
        run_with_admin(
            self.server.admin()?,
            self.server.serve.clone(),
            registry,
            |stop| query.run(stop),
        )
        .await
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        self.server.logging()
    }
}

impl Tool for AllInOneCli {
    const CARRIES_SPANS: bool = true;

    async fn run(self) -> anyhow::Result<()> {
        let mut registry = Registry::default();
        let storage = self.storage.open(&mut registry).await?;
        let mut collector_options = ack_after_write_by_default(self.collector, &self.storage);
        if collector_options.zipkin_host_port.is_empty() {
            collector_options.zipkin_host_port = ":9411".into();
        }
        let sampling = Sampling::start(self.sampling, Arc::clone(&storage.sampling)).await?;
        sampling.register_metrics(&mut registry);
        let (writer, ingester) = if self.streaming {
            let writer = self
                .storage
                .open_kafka_writer(&self.kafka_producer, &mut registry)?;
            let ingester = Ingester::new(
                &self.kafka_consumer,
                Arc::clone(&storage.writer),
                &mut registry,
            )?;
            (writer, Some(ingester))
        } else {
            (Arc::clone(&storage.writer), None)
        };
        let spm = self.spm.open(&self.storage)?;
        let red = spm.as_ref().map(|s| Arc::clone(&s.red));
        let collector = Collector::bind(
            collector_options,
            writer,
            &sampling,
            red.clone(),
            &mut registry,
        )
        .await?;
        let query = bind_query(self.query, &storage, red, &mut registry).await?;
        let mut agent_options = self.agent;
        agent_options.collectors = vec![loopback(collector.local_addrs().grpc).to_string()];
        // the agent's spans go straight to this process's collector; its
        // sampling requests still go to the collector's gRPC port
        let agent = Agent::bind(agent_options, &mut registry)
            .await?
            .with_sink(Arc::new(in_process::CollectorSink(collector.processor())));
        tracing::info!(
            agent = ?agent.local_addrs(),
            collector = ?collector.local_addrs(),
            query = ?query.local_addrs(),
            "all-in-one listening"
        );
        let result = run_with_admin(
            self.server.admin()?,
            self.server.serve.clone(),
            registry,
            |stop| async move {
                Spm::keep(&spm, &stop);
                let ingest = async {
                    match ingester {
                        Some(i) => Ok(i.run(stop.shutdown().wait()).await?),
                        None => Ok(()),
                    }
                };
                let (a, c, q, i) = tokio::join!(
                    agent.run(stop.clone()),
                    collector.run(stop.clone()),
                    query.run(stop.clone()),
                    ingest
                );
                a.and(c).and(q).and(i)
            },
        )
        .await;
        sampling.stop().await;
        result
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        self.server.logging()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_lines_are_well_formed_and_use_jaegers_names() {
        spoor_server::config::command::<AgentCli>().debug_assert();
        spoor_server::config::command::<CollectorCli>().debug_assert();
        spoor_server::config::command::<QueryCli>().debug_assert();
        spoor_server::config::command::<AllInOneCli>().debug_assert();
        spoor_server::config::command::<es_index::EsIndexCli>().debug_assert();
        spoor_server::config::command::<IngesterCli>().debug_assert();
        operator::OperatorCli::command().debug_assert();
        spoor_server::config::command::<dependencies_job::DependenciesCli>().debug_assert();
        spoor_server::config::command::<cassandra_schema::CassandraSchemaCli>().debug_assert();
        let cli = AllInOneCli::try_parse_from([
            "spoor-all-in-one",
            "--memory.max-traces=50",
            "--collector.queue-size=10",
            "--query.base-path=/jaeger",
        ])
        .unwrap();
        assert_eq!(cli.storage.memory_max_traces, 50);
        assert_eq!(cli.collector.queue_size, Some(10));
        assert_eq!(cli.query.base_path, "/jaeger");
        assert_eq!(cli.server.admin_host_port, ":14269");
        let admin = |cli: clap::Command| {
            cli.try_get_matches_from(["spoor"])
                .unwrap()
                .get_one::<String>("admin.http.host-port")
                .cloned()
                .unwrap()
        };
        assert_eq!(admin(AgentCli::command()), ":14271");
        assert_eq!(admin(CollectorCli::command()), ":14269");
        assert_eq!(admin(IngesterCli::command()), ":14270");
        assert_eq!(admin(QueryCli::command()), ":16687");
        // booleans as Jaeger's users write them
        let args = [
            "spoor-all-in-one",
            "--es.use-aliases=true",
            "--collector.otlp.enabled=false",
            "--all-in-one.streaming",
        ];
        let cli: AllInOneCli = spoor_server::config::parse_with_file(
            args.iter().map(Into::into).collect(),
            &Default::default(),
        )
        .unwrap();
        assert!(cli.storage.elasticsearch.use_aliases && cli.streaming);
        assert!(!cli.collector.otlp_enabled);
    }

    #[test]
    fn help_documents_every_option_with_its_default() {
        let help = AllInOneCli::command().render_long_help().to_string();
        for needle in [
            "--collector.queue-size",
            "COLLECTOR_QUEUE_SIZE",
            "--collector.queue-size-memory",
            "[default: 256]",
            "SPAN_STORAGE_TYPE",
            "QUERY_BASE_PATH",
            "MEMORY_MAX_TRACES",
        ] {
            assert!(help.contains(needle), "{needle} missing from --help");
        }
    }
}
