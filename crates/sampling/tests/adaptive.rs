//! Adaptive sampling on a virtual clock: convergence to the target, one
//! leader among collectors, and handover when the leader goes away.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use spoor_model::{KeyValue, Process, Span, SpanId, TraceId, Value};
use spoor_sampling::StrategyProvider;
use spoor_sampling::adaptive::{AdaptiveOptions, AdaptiveProvider, Observed, calculate};
use spoor_storage::SamplingStore;
use spoor_storage_memory::MemorySamplingStore;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    adaptive: AdaptiveOptions,
}

fn options() -> AdaptiveOptions {
    Cli::try_parse_from(["t"]).unwrap().adaptive
}

const INTERVAL: Duration = Duration::from_secs(60);

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_040) // on an interval boundary
}

/// The probability `provider` serves for an operation.
fn probability(provider: &AdaptiveProvider, service: &str, op: &str) -> f64 {
    let s = provider.strategy(service);
    let ops = s.operation_sampling.unwrap();
    ops.per_operation_strategies
        .iter()
        .find(|o| o.operation == op)
        .map(|o| o.probabilistic_sampling.unwrap().sampling_rate)
        .unwrap_or(ops.default_sampling_probability)
}

fn root_span(service: &Arc<Process>, op: &str, p: f64) -> Span {
    Span {
        trace_id: TraceId(1),
        span_id: SpanId(1),
        operation_name: op.into(),
        references: vec![],
        flags: 1,
        start_time: UNIX_EPOCH,
        duration: Duration::ZERO,
        tags: vec![
            KeyValue::string("sampler.type", "probabilistic"),
            KeyValue::new("sampler.param", Value::Float64(p)),
        ],
        logs: vec![],
        process: Arc::clone(service),
        warnings: vec![],
    }
}

/// One interval of clients sampling `rates` (traces/s per operation) with the
/// probabilities `providers[0]` serves, their sampled roots spread over the
/// providers. Like Jaeger clients' guaranteed-throughput sampler, every
/// operation is sampled at least at the served lower bound.
fn traffic(providers: &[&AdaptiveProvider], rates: &[(&str, f64)]) {
    let shop = Arc::new(Process {
        service_name: "shop".into(),
        tags: vec![],
    });
    let lower_bound = providers[0]
        .strategy("shop")
        .operation_sampling
        .unwrap()
        .default_lower_bound_traces_per_second;
    let mut n = 0;
    for (op, rate) in rates {
        let p = probability(providers[0], "shop", op);
        let seconds = INTERVAL.as_secs_f64();
        let sampled = (rate * seconds * p)
            .max(lower_bound * seconds)
            .min(rate * seconds)
            .round() as usize;
        for _ in 0..sampled {
            providers[n % providers.len()]
                .aggregator()
                .record(&root_span(&shop, op, p));
            n += 1;
        }
    }
}

#[tokio::test]
async fn probabilities_converge_to_the_target_samples_per_second() {
    let store: Arc<dyn SamplingStore> = Arc::new(MemorySamplingStore::default());
    let provider = AdaptiveProvider::new(options(), store, "collector-1".into());
    let rates = [("busy", 100.0), ("quiet", 1.0)];
    let mut now = start();
    for _ in 0..60 {
        traffic(&[&provider], &rates);
        now += INTERVAL;
        assert!(provider.tick(now + Duration::from_millis(1)).await.unwrap());
    }
    let busy = probability(&provider, "shop", "busy") * 100.0;
    let quiet = probability(&provider, "shop", "quiet") * 1.0;
    assert!((0.7..=1.3).contains(&busy), "busy samples {busy}/s");
    assert!((0.7..=1.3).contains(&quiet), "quiet samples {quiet}/s");
    let served = provider.strategy("shop").operation_sampling.unwrap();
    assert_eq!(served.default_sampling_probability, 0.001);
    assert!((served.default_lower_bound_traces_per_second - 1.0 / 60.0).abs() < 1e-9);
}

#[tokio::test]
async fn collectors_agree_on_one_leader_and_hand_over_when_it_stops() {
    let store: Arc<dyn SamplingStore> = Arc::new(MemorySamplingStore::default());
    let a = AdaptiveProvider::new(options(), Arc::clone(&store), "collector-a".into());
    let b = AdaptiveProvider::new(options(), Arc::clone(&store), "collector-b".into());
    let rates = [("busy", 100.0)];
    let mut now = start();
    for _ in 0..10 {
        traffic(&[&a, &b], &rates);
        now += INTERVAL;
        let (la, lb) = (a.tick(now).await.unwrap(), b.tick(now).await.unwrap());
        assert!(la ^ lb, "exactly one leader");
        assert_eq!(
            a.strategy("shop"),
            b.strategy("shop"),
            "both serve the same probabilities"
        );
    }
    assert!(
        probability(&a, "shop", "busy") > 0.001,
        "counts from both collectors were used"
    );

    // a stops without resigning: b leads once the lease (2 intervals) has run out
    let lease = options().leader_lease;
    let a_stopped = now;
    let mut handed_over = None;
    for _ in 0..5 {
        now += INTERVAL;
        if b.tick(now).await.unwrap() {
            handed_over = Some(now.duration_since(a_stopped).unwrap());
            break;
        }
    }
    let after = handed_over.expect("b never took over");
    assert!(
        after <= lease + INTERVAL,
        "handover after {after:?}, lease {lease:?}"
    );

    // a graceful stop hands over at once
    b.resign().await.unwrap();
    assert!(a.tick(now + Duration::from_secs(1)).await.unwrap());
}

#[test]
fn calculation_follows_jaegers_rules() {
    let o = options();
    let prev = BTreeMap::from([(
        "s".to_string(),
        BTreeMap::from([
            ("near".to_string(), 0.1),
            ("over".to_string(), 0.5),
            ("under".to_string(), 0.1),
            ("idle".to_string(), 0.01),
            ("floor".to_string(), 2e-5),
            ("lagging".to_string(), 0.2),
        ]),
    )]);
    let seen = |op: &str, qps: f64, p: f64| {
        (
            ("s".to_string(), op.to_string()),
            Observed {
                qps,
                probabilities: vec![p],
            },
        )
    };
    let observed = BTreeMap::from([
        seen("near", 1.2, 0.1),
        seen("over", 10.0, 0.5),
        seen("under", 0.1, 0.1),
        seen("idle", 0.0, 0.01),
        seen("floor", 1000.0, 2e-5),
        seen("new", 0.5, 0.001),
        seen("lagging", 10.0, 0.4),
    ]);
    let next = calculate(&o, &prev, &observed);
    let p = |op: &str| next["s"][op];
    assert_eq!(p("near"), 0.1, "within the tolerance: unchanged");
    assert!(
        (p("over") - 0.05).abs() < 1e-12,
        "too many samples: straight to the target"
    );
    assert!(
        (p("under") - 0.15).abs() < 1e-12,
        "too few: at most 50 % more"
    );
    assert_eq!(p("idle"), 0.02, "no samples at all: doubled");
    assert_eq!(
        p("floor"),
        o.min_sampling_probability,
        "never below the minimum"
    );
    assert!(
        (p("new") - 0.0015).abs() < 1e-12,
        "new operations start from the initial probability"
    );
    assert_eq!(
        p("lagging"),
        0.2,
        "clients still on an older probability: wait for them"
    );
}
