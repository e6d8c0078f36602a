//! Where strategies come from at run time: a file or URL, loaded at start
//! (a bad file stops start-up with a clear error) and, with a reload
//! interval, re-read in the background — a bad reload keeps the last good
//! strategies and logs why.
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Args};
use spoor_proto::api_v2::SamplingStrategyResponse;

use crate::file::{ResolvedStrategies, StrategiesFile, parse_strategies, resolve};

/// Largest strategies document read from a URL.
const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// Answers "how should this service sample?".
pub trait StrategyProvider: Send + Sync + 'static {
    fn strategy(&self, service: &str) -> SamplingStrategyResponse;
}

/// Where strategies come from (Jaeger's SAMPLING_CONFIG_TYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplingConfigType {
    /// A strategies file, or the default strategy without one.
    File,
    /// Per-operation probabilities computed from observed traffic.
    Adaptive,
}

#[derive(Args, Clone, Debug)]
pub struct SamplingOptions {
    /// Strategy source: file or adaptive.
    #[arg(
        long = "sampling.config-type",
        env = "SAMPLING_CONFIG_TYPE",
        value_enum,
        default_value = "file"
    )]
    pub config_type: SamplingConfigType,

    #[command(flatten)]
    pub adaptive: crate::adaptive::AdaptiveOptions,

    /// Strategies file (JSON or YAML), a path or an http:// URL; without it every
    /// service samples probabilistically at the default probability.
    #[arg(long = "sampling.strategies-file", env = "SAMPLING_STRATEGIES_FILE")]
    pub strategies_file: Option<String>,

    /// How often the strategies file is read again (0s: never).
    #[arg(long = "sampling.strategies-reload-interval", env = "SAMPLING_STRATEGIES_RELOAD_INTERVAL", default_value = "0s", value_parser = spoor_model::parse_go_duration)]
    pub reload_interval: Duration,

    /// Probability of the default strategy when no file, or no default in it, says otherwise.
    #[arg(
        long = "sampling.default-sampling-probability",
        env = "SAMPLING_DEFAULT_SAMPLING_PROBABILITY",
        default_value_t = 0.001
    )]
    pub default_probability: f64,

    /// Services without operation strategies inherit the default's (Jaeger's fix for its issue 5270).
    #[arg(long = "sampling.strategies.bugfix-5270", env = "SAMPLING_STRATEGIES_BUGFIX_5270", default_value_t = true, action = ArgAction::Set)]
    pub bugfix_5270: bool,
}

/// Strategies from a file (or none), swapped whole on reload.
pub struct FileProvider {
    options: SamplingOptions,
    current: RwLock<Arc<ResolvedStrategies>>,
}

/// The provider behind every serving path.
pub type Strategies = Arc<dyn StrategyProvider>;

async fn read_source(source: &str) -> anyhow::Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let resp = reqwest::Client::new()
            .get(source)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("while fetching strategies from {source}"))?
            .error_for_status()?;
        let body = resp.bytes().await?;
        anyhow::ensure!(
            body.len() <= MAX_DOCUMENT_BYTES,
            "strategies document over {MAX_DOCUMENT_BYTES} bytes"
        );
        Ok(String::from_utf8(body.to_vec()).context("strategies document is not UTF-8")?)
    } else {
        tokio::fs::read_to_string(source)
            .await
            .with_context(|| format!("while reading strategies file {source}"))
    }
}

impl FileProvider {
    /// Loads the configured file, if any.
    pub async fn load(options: SamplingOptions) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&options.default_probability),
            "sampling.default-sampling-probability must be within 0 and 1"
        );
        let resolved = Self::read(&options).await?;
        Ok(Arc::new(FileProvider {
            options,
            current: RwLock::new(Arc::new(resolved)),
        }))
    }

    async fn read(options: &SamplingOptions) -> anyhow::Result<ResolvedStrategies> {
        let file = match &options.strategies_file {
            Some(source) => {
                let text = read_source(source).await?;
                parse_strategies(&text)
                    .with_context(|| format!("while parsing strategies from {source}"))?
            }
            None => StrategiesFile::default(),
        };
        Ok(resolve(
            &file,
            options.default_probability,
            options.bugfix_5270,
        ))
    }

    /// Re-reads the source every reload interval; None when reloading is off.
    pub fn spawn_reload(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.options.strategies_file.is_none() || self.options.reload_interval.is_zero() {
            return None;
        }
        let this = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.options.reload_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                match Self::read(&this.options).await {
                    Ok(resolved) => {
                        *this.current.write().expect("strategies lock poisoned") =
                            Arc::new(resolved)
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "keeping the last good sampling strategies")
                    }
                }
            }
        }))
    }
}

impl StrategyProvider for FileProvider {
    fn strategy(&self, service: &str) -> SamplingStrategyResponse {
        let current = Arc::clone(&self.current.read().expect("strategies lock poisoned"));
        current
            .services
            .get(service)
            .cloned()
            .unwrap_or_else(|| current.default.clone())
    }
}

/// The running sampling setup of a collector: what serves strategies, where
/// accepted spans are counted (adaptive only), and the background work.
pub struct Sampling {
    pub provider: Strategies,
    pub aggregator: Option<Arc<crate::adaptive::Aggregator>>,
    adaptive: Option<Arc<crate::adaptive::AdaptiveProvider>>,
    background: Option<tokio::task::JoinHandle<()>>,
}

impl Sampling {
    /// Loads the strategies file or starts adaptive sampling on `store`.
    pub async fn start(
        options: SamplingOptions,
        store: Arc<dyn spoor_storage::SamplingStore>,
    ) -> anyhow::Result<Self> {
        match options.config_type {
            SamplingConfigType::File => {
                let provider = FileProvider::load(options).await?;
                let background = provider.spawn_reload();
                Ok(Sampling {
                    provider,
                    aggregator: None,
                    adaptive: None,
                    background,
                })
            }
            SamplingConfigType::Adaptive => {
                let holder = format!(
                    "{}-{}-{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "collector".into()),
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .subsec_nanos()
                );
                let adaptive =
                    crate::adaptive::AdaptiveProvider::new(options.adaptive, store, holder);
                let background = Some(adaptive.spawn());
                Ok(Sampling {
                    provider: adaptive.clone(),
                    aggregator: Some(adaptive.aggregator()),
                    adaptive: Some(adaptive),
                    background,
                })
            }
        }
    }

    /// What a collector serves without sampling options: Jaeger's default
    /// strategy for every service.
    pub async fn defaults(store: Arc<dyn spoor_storage::SamplingStore>) -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            sampling: SamplingOptions,
        }
        let options = <Defaults as clap::Parser>::try_parse_from(["defaults"])?.sampling;
        Self::start(options, store).await
    }

    /// Registers adaptive sampling's metrics (nothing for file strategies).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        if let Some(adaptive) = &self.adaptive {
            adaptive.metrics().register(registry);
        }
    }

    /// Stops background work; an adaptive leader hands its lease back.
    pub async fn stop(self) {
        if let Some(task) = self.background {
            task.abort();
        }
        if let Some(adaptive) = self.adaptive
            && let Err(e) = adaptive.resign().await
        {
            tracing::warn!(error = %format!("{e:#}"), "could not release the sampling leader lease");
        }
    }
}
