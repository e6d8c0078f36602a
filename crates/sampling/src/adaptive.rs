//! Adaptive sampling, as Jaeger does it: every collector counts the sampled
//! root spans per service and operation and writes the counts to the
//! sampling store once per calculation interval; the collector holding the
//! store's lease (the leader) turns the latest counts into per-operation
//! probabilities that steer each operation towards the target samples per
//! second, and stores them; every collector serves what is stored.
//!
//! The clock is an argument of [`AdaptiveProvider::tick`], so tests drive it.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use spoor_model::{Span, Value};
use spoor_proto::api_v2::{
    OperationSamplingStrategy, PerOperationSamplingStrategies, ProbabilisticSamplingStrategy,
    SamplingStrategyResponse,
};
use spoor_storage::{SamplingStore, ServiceProbabilities, Throughput};

use crate::StrategyProvider;
use crate::file::probabilistic;

const LEASE: &str = "sampling-leader";

#[derive(Args, Clone, Debug)]
pub struct AdaptiveOptions {
    /// Sampled traces per second each operation is steered towards.
    #[arg(
        long = "sampling.target-samples-per-second",
        env = "SAMPLING_TARGET_SAMPLES_PER_SECOND",
        default_value_t = 1.0
    )]
    pub target_samples_per_second: f64,
    /// Relative distance from the target within which a probability is left alone.
    #[arg(
        long = "sampling.delta-tolerance",
        env = "SAMPLING_DELTA_TOLERANCE",
        default_value_t = 0.3
    )]
    pub delta_tolerance: f64,
    /// How often throughput is written and probabilities recomputed.
    #[arg(long = "sampling.calculation-interval", env = "SAMPLING_CALCULATION_INTERVAL", default_value = "1m", value_parser = spoor_model::parse_go_duration)]
    pub calculation_interval: Duration,
    /// Most recent intervals whose throughput is averaged for a calculation.
    #[arg(
        long = "sampling.buckets-for-calculation",
        env = "SAMPLING_BUCKETS_FOR_CALCULATION",
        default_value_t = 1
    )]
    pub buckets_for_calculation: u32,
    /// Probability of operations not yet calculated.
    #[arg(
        long = "sampling.initial-sampling-probability",
        env = "SAMPLING_INITIAL_SAMPLING_PROBABILITY",
        default_value_t = 0.001
    )]
    pub initial_sampling_probability: f64,
    /// Lowest probability ever served.
    #[arg(
        long = "sampling.min-sampling-probability",
        env = "SAMPLING_MIN_SAMPLING_PROBABILITY",
        default_value_t = 1e-5
    )]
    pub min_sampling_probability: f64,
    /// Traces per second every operation is sampled at least (served as the lower bound).
    #[arg(long = "sampling.min-samples-per-second", env = "SAMPLING_MIN_SAMPLES_PER_SECOND", default_value_t = 1.0 / 60.0)]
    pub min_samples_per_second: f64,
    /// How long the leader's lease lasts without renewal (renewed every interval).
    #[arg(long = "sampling.leader-lease", env = "SAMPLING_LEADER_LEASE", default_value = "2m", value_parser = spoor_model::parse_go_duration)]
    pub leader_lease: Duration,
}

/// How much a probability may grow in one calculation (Jaeger's cap): falling
/// short of the target is corrected slowly, overshooting at once.
const MAX_INCREASE: f64 = 0.5;

/// (service, operation)
type OperationKey = (String, String);

/// Counts sampled root spans between flushes.
#[derive(Default)]
pub struct Aggregator {
    counts: Mutex<HashMap<OperationKey, (u64, BTreeSet<String>)>>,
}

impl Aggregator {
    /// Counts `span` if it is a root span sampled by a probabilistic (or
    /// lower-bound) sampler, as Jaeger clients mark them.
    pub fn record(&self, span: &Span) {
        if !span.references.is_empty() {
            return;
        }
        let Some(Value::String(kind)) = span.tag("sampler.type") else {
            return;
        };
        if kind != "probabilistic" && kind != "lowerbound" {
            return;
        }
        let param = span
            .tag("sampler.param")
            .map(|v| v.as_string().into_owned())
            .unwrap_or_default();
        let mut counts = self.counts.lock().expect("aggregator lock poisoned");
        let entry = counts
            .entry((
                span.process.service_name.clone(),
                span.operation_name.clone(),
            ))
            .or_default();
        entry.0 += 1;
        if entry.1.len() < 10 {
            entry.1.insert(param);
        }
    }

    /// The counts since the last call.
    pub fn take(&self) -> Vec<Throughput> {
        let counts = std::mem::take(&mut *self.counts.lock().expect("aggregator lock poisoned"));
        counts
            .into_iter()
            .map(
                |((service, operation), (count, probabilities))| Throughput {
                    service,
                    operation,
                    count,
                    probabilities: probabilities.into_iter().collect(),
                },
            )
            .collect()
    }
}

/// What the leader saw of one operation in the calculation window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Sampled root spans per second.
    pub qps: f64,
    /// The probabilities clients reported sampling them with.
    pub probabilities: Vec<f64>,
}

/// New probabilities from the previous ones and what was observed. As in
/// Jaeger, an operation whose clients do not yet report the current
/// probability keeps it: its traffic still reflects an older one, and
/// correcting again would overshoot.
pub fn calculate(
    options: &AdaptiveOptions,
    previous: &ServiceProbabilities,
    observed: &BTreeMap<(String, String), Observed>,
) -> ServiceProbabilities {
    let mut next = previous.clone();
    for ((service, operation), seen) in observed {
        let stored = previous
            .get(service)
            .and_then(|ops| ops.get(operation))
            .copied();
        let old = stored.unwrap_or(options.initial_sampling_probability);
        let adopted = seen
            .probabilities
            .iter()
            .any(|p| (p - old).abs() <= old * 1e-6);
        let target = options.target_samples_per_second;
        let qps = seen.qps;
        let lagging = stored.is_some() && !adopted;
        let close_enough = ((qps - target) / target).abs() < options.delta_tolerance;
        let new = if lagging || close_enough {
            old
        } else if qps == 0.0 {
            old * 2.0
        } else {
            let proposed = old * target / qps;
            if proposed > old {
                proposed.min(old * (1.0 + MAX_INCREASE))
            } else {
                proposed
            }
        };
        next.entry(service.clone()).or_default().insert(
            operation.clone(),
            new.clamp(options.min_sampling_probability, 1.0),
        );
    }
    next
}

/// What adaptive sampling did, for the admin port.
#[derive(Clone, Default)]
pub struct AdaptiveMetrics {
    pub root_spans_counted: Counter,
    pub calculations: Counter,
    pub operations_with_probabilities: Gauge,
    pub leader: Gauge,
}

impl AdaptiveMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("spoor_sampling");
        r.register(
            "root_spans_counted",
            "Sampled root spans counted for adaptive sampling",
            self.root_spans_counted.clone(),
        );
        r.register(
            "calculations",
            "Probability calculations this collector made as leader",
            self.calculations.clone(),
        );
        r.register(
            "operations",
            "Operations with a computed probability",
            self.operations_with_probabilities.clone(),
        );
        r.register(
            "leader",
            "1 while this collector is the adaptive sampling leader",
            self.leader.clone(),
        );
    }
}

/// The adaptive provider of one collector.
pub struct AdaptiveProvider {
    options: AdaptiveOptions,
    store: Arc<dyn SamplingStore>,
    holder: String,
    aggregator: Arc<Aggregator>,
    current: RwLock<ServiceProbabilities>,
    metrics: AdaptiveMetrics,
}

fn bucket_start(now: SystemTime, interval: Duration) -> SystemTime {
    let since = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let step = interval.as_nanos().max(1);
    UNIX_EPOCH + Duration::from_nanos(((since / step) * step) as u64)
}

impl AdaptiveProvider {
    /// `holder` names this collector in the leader lease; unique per collector.
    pub fn new(
        options: AdaptiveOptions,
        store: Arc<dyn SamplingStore>,
        holder: String,
    ) -> Arc<Self> {
        Arc::new(AdaptiveProvider {
            options,
            store,
            holder,
            aggregator: Arc::default(),
            current: RwLock::new(BTreeMap::new()),
            metrics: AdaptiveMetrics::default(),
        })
    }

    pub fn metrics(&self) -> &AdaptiveMetrics {
        &self.metrics
    }

    /// Where the collector reports the spans it accepts.
    pub fn aggregator(&self) -> Arc<Aggregator> {
        Arc::clone(&self.aggregator)
    }

    /// One interval's work at `now`: write this collector's counts to the
    /// bucket that just ended, recompute if this collector holds the lease,
    /// and load the stored probabilities. Returns whether it leads.
    pub async fn tick(&self, now: SystemTime) -> anyhow::Result<bool> {
        let interval = self.options.calculation_interval;
        let this_bucket = bucket_start(now, interval);
        let last_bucket = this_bucket.checked_sub(interval).unwrap_or(UNIX_EPOCH);
        let counts = self.aggregator.take();
        self.metrics
            .root_spans_counted
            .inc_by(counts.iter().map(|t| t.count).sum());
        if !counts.is_empty() {
            self.store.insert_throughput(last_bucket, counts).await?;
        }
        let leader = self
            .store
            .acquire_lease(LEASE, &self.holder, self.options.leader_lease, now)
            .await?;
        if leader {
            let buckets = self.options.buckets_for_calculation.max(1);
            let start = this_bucket
                .checked_sub(interval * buckets)
                .unwrap_or(UNIX_EPOCH);
            let rows = self.store.get_throughput(start, this_bucket).await?;
            let seconds = (interval * buckets).as_secs_f64();
            let mut observed: BTreeMap<(String, String), Observed> = BTreeMap::new();
            for (_, t) in rows {
                let seen = observed.entry((t.service, t.operation)).or_default();
                seen.qps += t.count as f64 / seconds;
                seen.probabilities
                    .extend(t.probabilities.iter().filter_map(|p| p.parse::<f64>().ok()));
            }
            let previous = self
                .store
                .get_latest_probabilities()
                .await?
                .unwrap_or_default();
            let next = calculate(&self.options, &previous, &observed);
            self.store.insert_probabilities(now, next).await?;
            self.metrics.calculations.inc();
        }
        self.metrics.leader.set(leader as i64);
        if let Some(latest) = self.store.get_latest_probabilities().await? {
            self.metrics
                .operations_with_probabilities
                .set(latest.values().map(|ops| ops.len() as i64).sum());
            *self.current.write().expect("probabilities lock poisoned") = latest;
        }
        Ok(leader)
    }

    /// Gives up leadership at shutdown so another collector takes over at once.
    pub async fn resign(&self) -> anyhow::Result<()> {
        Ok(self.store.release_lease(LEASE, &self.holder).await?)
    }

    /// Ticks every calculation interval on the real clock.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.options.calculation_interval);
            loop {
                tick.tick().await;
                if let Err(e) = this.tick(SystemTime::now()).await {
                    tracing::warn!(error = %format!("{e:#}"), "adaptive sampling round failed");
                }
            }
        })
    }
}

impl StrategyProvider for AdaptiveProvider {
    fn strategy(&self, service: &str) -> SamplingStrategyResponse {
        let current = self.current.read().expect("probabilities lock poisoned");
        let per_operation_strategies = current
            .get(service)
            .map(|ops| {
                ops.iter()
                    .map(|(op, p)| OperationSamplingStrategy {
                        operation: op.clone(),
                        probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                            sampling_rate: *p,
                        }),
                    })
                    .collect()
            })
            .unwrap_or_default();
        SamplingStrategyResponse {
            operation_sampling: Some(PerOperationSamplingStrategies {
                default_sampling_probability: self.options.initial_sampling_probability,
                default_lower_bound_traces_per_second: self.options.min_samples_per_second,
                per_operation_strategies,
                ..Default::default()
            }),
            ..probabilistic(self.options.initial_sampling_probability)
        }
    }
}
