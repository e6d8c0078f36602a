//! `spoor-dependencies`: computes the service dependency links of a time
//! window from the stored spans and writes them to the store, for backends
//! that keep links rather than derive them (Elasticsearch, Cassandra). Run
//! it periodically (a Kubernetes CronJob), as Jaeger runs its Spark job.
use std::time::{Duration, SystemTime};

use clap::Parser;
use spoor_server::Registry;
use spoor_storage_select::StorageOptions;

use crate::CommonOptions;

#[derive(Parser, Debug)]
#[command(
    name = "spoor-dependencies",
    version,
    about = "Computes service dependencies of a time window and writes them to the store"
)]
pub struct DependenciesCli {
    #[command(flatten)]
    pub common: CommonOptions,
    #[command(flatten)]
    pub storage: StorageOptions,
    /// The window ending now (or at --end) whose spans are counted.
    #[arg(long = "dependencies.window", env = "DEPENDENCIES_WINDOW", default_value = "24h", value_parser = spoor_model::parse_go_duration)]
    pub window: Duration,
    /// End of the window, RFC 3339 (default: now).
    #[arg(long = "dependencies.end", env = "DEPENDENCIES_END")]
    pub end: Option<String>,
    /// Most traces read per service.
    #[arg(
        long = "dependencies.max-traces-per-service",
        env = "DEPENDENCIES_MAX_TRACES_PER_SERVICE",
        default_value_t = 10_000
    )]
    pub per_service: usize,
}

impl crate::Tool for DependenciesCli {
    async fn run(self) -> anyhow::Result<()> {
        let end = match &self.end {
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| anyhow::anyhow!("--dependencies.end {text:?}: {e}"))?
                .into(),
            None => SystemTime::now(),
        };
        let storage = self.storage.open(&mut Registry::default()).await?;
        let Some(writer) = storage.dependency_writer else {
            anyhow::bail!(
                "span storage type {:?} derives dependencies from the spans; the job is for \
                 elasticsearch and cassandra",
                self.storage.storage_type
            );
        };
        let links = spoor_storage::compute_dependencies(
            storage.reader.as_ref(),
            end,
            self.window,
            self.per_service,
        )
        .await?;
        writer.write_dependencies(end, &links).await?;
        let calls: u64 = links.iter().map(|l| l.call_count).sum();
        println!(
            "{{\"links\":{},\"calls\":{calls},\"window_seconds\":{}}}",
            links.len(),
            self.window.as_secs()
        );
        Ok(())
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        (&self.common.log_level, None)
    }
}
