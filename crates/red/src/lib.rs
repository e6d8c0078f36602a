//! RED metrics (rate, errors, duration) of the spans the collector takes in,
//! per service, operation and span kind: what Jaeger's service performance
//! monitoring reads from Prometheus, computed here without a second system.
//!
//! Spans are counted when they are stored, in one-minute buckets by arrival
//! time, with a latency histogram of log-spaced bins (each 25 % wider than
//! the one before, so a quantile read from it is off by at most 12.5 %).
//! Buckets older than the retention are dropped; the number of series is
//! bounded, and the spans of series past the bound are counted, not kept.
//! Cumulative totals of the same series are exported for Prometheus.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_model::{Span, SpanKind, Value};

/// Width of one bucket: the shortest step a query can use.
pub const STEP: Duration = Duration::from_secs(60);
/// Latency bins: bin `i` holds durations in `[BASE·GROWTH^(i-1), BASE·GROWTH^i)`
/// microseconds; bin 0 everything under `BASE`, the last everything above.
const BASE_MICROS: f64 = 10.0;
const GROWTH: f64 = 1.25;
const BINS: usize = 100;

/// The span kinds, in the order series keep them.
const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

fn kind_index(kind: SpanKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

fn bin_of(duration: Duration) -> u8 {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < BASE_MICROS {
        return 0;
    }
    let i = ((micros / BASE_MICROS).ln() / GROWTH.ln()).floor() as usize + 1;
    i.min(BINS - 1) as u8
}

/// The bounds of bin `i`, in milliseconds.
fn bin_bounds_ms(i: usize) -> (f64, f64) {
    let lower = if i == 0 {
        0.0
    } else {
        BASE_MICROS * GROWTH.powi(i as i32 - 1)
    };
    (lower / 1000.0, BASE_MICROS * GROWTH.powi(i as i32) / 1000.0)
}

/// What Jaeger counts as an error: OTel status ERROR or `error=true`.
fn is_error(span: &Span) -> bool {
    span.is_error()
        || matches!(span.tag("otel.status_code"), Some(Value::String(s)) if s == "ERROR")
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counts {
    calls: u64,
    errors: u64,
    /// (bin, count), sorted by bin
    bins: Vec<(u8, u64)>,
}

impl Counts {
    fn add(&mut self, bin: u8, error: bool) {
        self.calls += 1;
        self.errors += u64::from(error);
        match self.bins.binary_search_by_key(&bin, |(b, _)| *b) {
            Ok(i) => self.bins[i].1 += 1,
            Err(i) => self.bins.insert(i, (bin, 1)),
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.errors += other.errors;
        for &(bin, n) in &other.bins {
            match self.bins.binary_search_by_key(&bin, |(b, _)| *b) {
                Ok(i) => self.bins[i].1 += n,
                Err(i) => self.bins.insert(i, (bin, n)),
            }
        }
    }

    /// The `q` quantile of the latencies, in milliseconds, interpolated
    /// within its bin as Prometheus's `histogram_quantile` does.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.bins.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for &(bin, n) in &self.bins {
            if (below + n) as f64 >= rank {
                let (lower, upper) = bin_bounds_ms(usize::from(bin));
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            below += n;
        }
        self.bins
            .last()
            .map(|&(bin, _)| bin_bounds_ms(usize::from(bin)).1)
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Series {
    /// (minute since the epoch, counts), oldest first
    buckets: VecDeque<(u64, Counts)>,
    /// since the process started, for the Prometheus export
    total: Counts,
    sum_micros: u64,
    /// The latest trace with a span counted here, without and with an
    /// error: the exemplars of the Prometheus export.
    #[serde(default)]
    last_ok: Option<u128>,
    #[serde(default)]
    last_error: Option<u128>,
}

/// How long buckets are kept and how many series there may be.
#[derive(Clone, Copy, Debug)]
pub struct RedOptions {
    pub retention: Duration,
    pub max_series: usize,
}

impl Default for RedOptions {
    fn default() -> Self {
        RedOptions {
            retention: Duration::from_secs(24 * 3600),
            max_series: 2_000,
        }
    }
}

/// service -> per span kind: operation -> series
type Services = Map<String, Kinds>;
/// per span kind: operation -> series
type Kinds = [Map<String, Series>; 6];
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// RED metrics of the spans recorded, queryable for a window.
pub struct Red {
    options: RedOptions,
    services: Mutex<Services>,
    series: AtomicU64,
    dropped: AtomicU64,
}

/// One answered series: its service (and operation when grouped by it) and
/// its points, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    pub service: String,
    pub operation: Option<String>,
    pub points: Vec<(SystemTime, f64)>,
}

/// What a query reads: the services, the kinds, the evaluation times
/// (`end - lookback` to `end` every `step`) and the window before each
/// time that a rate or quantile covers.
#[derive(Clone, Debug)]
pub struct Window<'a> {
    pub services: &'a [String],
    pub span_kinds: &'a [SpanKind],
    pub group_by_operation: bool,
    pub end: SystemTime,
    pub lookback: Duration,
    pub step: Duration,
    pub rate_per: Duration,
}

/// Which RED figure a query computes at each point.
#[derive(Clone, Copy, Debug)]
pub enum Figure {
    /// calls per second over the window
    CallRate,
    /// errors / calls over the window
    ErrorRate,
    /// the quantile of latencies over the window, in milliseconds
    Latency(f64),
}

fn minute(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

/// One series' cumulative totals, for the Prometheus export.
#[derive(Clone, Debug)]
pub struct Totals {
    pub service: String,
    pub operation: String,
    pub span_kind: SpanKind,
    pub calls: u64,
    pub errors: u64,
    /// (upper bound in seconds, cumulative count) per bin with spans, then
    /// `+Inf` as the last
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    /// The latest trace of a span without an error and of one with, as 32
    /// hex digits.
    pub ok_exemplar: Option<String>,
    pub error_exemplar: Option<String>,
}

impl Red {
    pub fn new(options: RedOptions) -> Self {
        Red {
            options,
            services: Mutex::new(Services::default()),
            series: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts `spans`, arrived at `now`.
    pub fn record(&self, spans: &[Span], now: SystemTime) {
        let at = minute(now);
        let oldest = minute(
            now.checked_sub(self.options.retention)
                .unwrap_or(UNIX_EPOCH),
        );
        let mut services = self.services.lock().expect("red lock poisoned");
        // a batch's spans come in runs of one process: its service is
        // looked up once a run
        for run in spans.chunk_by(|a, b| Arc::ptr_eq(&a.process, &b.process)) {
            let service = &run[0].process.service_name;
            let kinds = match services.get_mut(service) {
                Some(kinds) => kinds,
                None => {
                    if self.series.load(Ordering::Relaxed) as usize >= self.options.max_series {
                        self.dropped.fetch_add(run.len() as u64, Ordering::Relaxed);
                        continue;
                    }
                    services.entry(service.clone()).or_default()
                }
            };
            for span in run {
                self.record_one(kinds, span, at, oldest);
            }
        }
    }

    fn record_one(&self, kinds: &mut Kinds, span: &Span, at: u64, oldest: u64) {
        let operations = &mut kinds[kind_index(span.kind())];
        let series = match operations.get_mut(&span.operation_name) {
            Some(series) => series,
            None => {
                if self.series.load(Ordering::Relaxed) as usize >= self.options.max_series {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.series.fetch_add(1, Ordering::Relaxed);
                operations.entry(span.operation_name.clone()).or_default()
            }
        };
        let (bin, error) = (bin_of(span.duration), is_error(span));
        while series.buckets.front().is_some_and(|(m, _)| *m < oldest) {
            series.buckets.pop_front();
        }
        match series.buckets.back_mut() {
            Some((m, counts)) if *m >= at => counts.add(bin, error),
            _ => {
                let mut counts = Counts::default();
                counts.add(bin, error);
                series.buckets.push_back((at, counts));
            }
        }
        series.total.add(bin, error);
        series.sum_micros += span.duration.as_micros().min(u64::MAX.into()) as u64;
        let last = if error {
            &mut series.last_error
        } else {
            &mut series.last_ok
        };
        *last = Some(span.trace_id.0);
    }

    /// The buckets and totals as JSON, for [`Red::restore`]: what a
    /// persistent store keeps across restarts.
    pub fn snapshot(&self) -> Vec<u8> {
        let services = self.services.lock().expect("red lock poisoned");
        serde_json::to_vec(&*services).expect("RED metrics serialize")
    }

    /// RED metrics from a [`Red::snapshot`]; buckets past the retention
    /// are dropped with the next span of their series.
    pub fn restore(options: RedOptions, snapshot: &[u8]) -> Result<Red, serde_json::Error> {
        let services: Services = serde_json::from_slice(snapshot)?;
        let series = services
            .values()
            .flat_map(|kinds| kinds.iter())
            .map(|ops| ops.len() as u64)
            .sum();
        Ok(Red {
            options,
            services: Mutex::new(services),
            series: AtomicU64::new(series),
            dropped: AtomicU64::new(0),
        })
    }

    /// Spans not counted because their series would pass `max_series`.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn series(&self) -> u64 {
        self.series.load(Ordering::Relaxed)
    }

    /// `figure` for each series `window` selects, at each of its times;
    /// times whose window holds no spans have no point (as Prometheus has
    /// none), except call rates once the series exists, which are 0 there.
    pub fn query(&self, window: &Window<'_>, figure: Figure) -> Vec<Points> {
        let services = self.services.lock().expect("red lock poisoned");
        let step = window.step.max(STEP);
        let start = window
            .end
            .checked_sub(window.lookback)
            .unwrap_or(UNIX_EPOCH);
        let mut times = Vec::new();
        let mut t = start;
        while t <= window.end && times.len() < 10_000 {
            times.push(t);
            t += step;
        }
        let mut out = Vec::new();
        for service in window.services {
            let Some(kinds) = services.get(service) else {
                continue;
            };
            // the series asked for, grouped by operation or all together
            let mut groups: Vec<(Option<&str>, Vec<&Series>)> = Vec::new();
            for kind in window.span_kinds {
                for (operation, series) in &kinds[kind_index(*kind)] {
                    let key = window.group_by_operation.then_some(operation.as_str());
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, list)) => list.push(series),
                        None => groups.push((key, vec![series])),
                    }
                }
            }
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            for (operation, list) in groups {
                // as a Prometheus counter, a series has no points before it
                // first counted a span
                let born = list
                    .iter()
                    .filter_map(|s| s.buckets.front().map(|(m, _)| *m))
                    .min()
                    .unwrap_or(u64::MAX);
                let points = times
                    .iter()
                    .filter_map(|&t| {
                        let counts = window_counts(&list, t, window.rate_per);
                        let value = match figure {
                            Figure::CallRate => (minute(t) >= born).then(|| {
                                counts.calls as f64 / window.rate_per.as_secs_f64().max(1.0)
                            }),
                            Figure::ErrorRate => (counts.calls > 0)
                                .then(|| counts.errors as f64 / counts.calls as f64),
                            Figure::Latency(q) => counts.quantile_ms(q),
                        }?;
                        Some((t, value))
                    })
                    .collect();
                out.push(Points {
                    service: service.clone(),
                    operation: operation.map(str::to_string),
                    points,
                });
            }
        }
        out
    }

    /// Every series' totals since the process started.
    pub fn totals(&self) -> Vec<Totals> {
        let services = self.services.lock().expect("red lock poisoned");
        let mut out = Vec::new();
        for (service, kinds) in services.iter() {
            for (kind, operations) in KINDS.iter().zip(kinds.iter()) {
                for (operation, series) in operations {
                    let mut cumulative = 0;
                    let mut buckets: Vec<(f64, u64)> = series
                        .total
                        .bins
                        .iter()
                        .map(|&(bin, n)| {
                            cumulative += n;
                            (bin_bounds_ms(usize::from(bin)).1 / 1000.0, cumulative)
                        })
                        .collect();
                    buckets.push((f64::INFINITY, series.total.calls));
                    out.push(Totals {
                        service: service.clone(),
                        operation: operation.clone(),
                        span_kind: *kind,
                        calls: series.total.calls,
                        errors: series.total.errors,
                        buckets,
                        sum_seconds: series.sum_micros as f64 / 1e6,
                        ok_exemplar: series.last_ok.map(|t| format!("{t:032x}")),
                        error_exemplar: series.last_error.map(|t| format!("{t:032x}")),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
        out
    }
}

/// The counts of `series` in the buckets within `rate_per` before `t`.
fn window_counts(series: &[&Series], t: SystemTime, rate_per: Duration) -> Counts {
    let last = minute(t);
    let first = minute(t.checked_sub(rate_per).unwrap_or(UNIX_EPOCH)) + 1;
    let mut counts = Counts::default();
    for s in series {
        for (m, c) in &s.buckets {
            if (first.min(last)..=last).contains(m) {
                counts.merge(c);
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use spoor_model::{KeyValue, Process, SpanId, TraceId};

    use super::*;

    fn span(service: &Arc<Process>, op: &str, kind: &str, micros: u64, error: bool) -> Span {
        let mut tags = vec![KeyValue::string("span.kind", kind)];
        if error {
            tags.push(KeyValue::new("error", Value::Bool(true)));
        }
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(1),
            operation_name: op.into(),
            references: vec![],
            flags: 1,
            start_time: UNIX_EPOCH,
            duration: Duration::from_micros(micros),
            tags,
            logs: vec![],
            process: Arc::clone(service),
            warnings: vec![],
        }
    }

    fn process(name: &str) -> Arc<Process> {
        Arc::new(Process {
            service_name: name.into(),
            tags: vec![],
        })
    }

    #[test]
    fn rates_errors_and_quantiles_over_a_window() {
        let red = Red::new(RedOptions::default());
        let web = process("web");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // 1..=1000 ms, one in ten an error, half on each of two operations
        let spans: Vec<Span> = (1..=1000u64)
            .map(|ms| {
                span(
                    &web,
                    if ms % 2 == 0 { "GET /a" } else { "GET /b" },
                    "server",
                    ms * 1000,
                    ms % 10 == 0,
                )
            })
            .collect();
        red.record(&spans, now);
        red.record(&[span(&web, "call out", "client", 5_000, false)], now);
        let services = ["web".to_string()];
        let window = Window {
            services: &services,
            span_kinds: &[SpanKind::Server],
            group_by_operation: false,
            end: now,
            lookback: Duration::from_secs(120),
            step: Duration::from_secs(60),
            rate_per: Duration::from_secs(600),
        };
        let [calls] = &red.query(&window, Figure::CallRate)[..] else {
            panic!()
        };
        // before the spans arrived the series did not exist: no points
        let [(t, rate)] = calls.points[..] else {
            panic!("{calls:?}")
        };
        assert_eq!(t, now);
        assert!((rate - 1000.0 / 600.0).abs() < 1e-9, "{rate}");
        // once it exists, a window without spans has a rate of 0
        let later = Window {
            end: now + Duration::from_secs(900),
            lookback: Duration::from_secs(1200),
            ..window.clone()
        };
        let [calls] = &red.query(&later, Figure::CallRate)[..] else {
            panic!()
        };
        assert_eq!(calls.points.first().map(|p| p.0), Some(now));
        assert_eq!(calls.points.last().map(|p| p.1), Some(0.0));
        let [errors] = &red.query(&window, Figure::ErrorRate)[..] else {
            panic!()
        };
        assert_eq!(errors.points, vec![(now, 0.1)]);
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let [latency] = &red.query(&window, Figure::Latency(q))[..] else {
                panic!()
            };
            let (_, ms) = latency.points[0];
            assert!(
                (ms - exact).abs() <= exact * 0.125,
                "p{q}: {ms} ms against {exact}"
            );
        }
        let by_op = red.query(
            &Window {
                group_by_operation: true,
                ..window.clone()
            },
            Figure::CallRate,
        );
        let ops: Vec<_> = by_op.iter().map(|p| p.operation.clone().unwrap()).collect();
        assert_eq!(ops, ["GET /a", "GET /b"]);
        let clients = red.query(
            &Window {
                span_kinds: &[SpanKind::Client],
                ..window.clone()
            },
            Figure::CallRate,
        );
        assert!((clients[0].points.last().unwrap().1 - 1.0 / 600.0).abs() < 1e-9);
        // a window that ends before the spans holds none of them
        let before = red.query(
            &Window {
                end: now - Duration::from_secs(600),
                ..window
            },
            Figure::ErrorRate,
        );
        assert!(before[0].points.is_empty());
    }

    #[test]
    fn a_snapshot_restores_the_same_answers() {
        let red = Red::new(RedOptions::default());
        let web = process("web");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        red.record(
            &[
                span(&web, "a", "server", 1_000, true),
                span(&web, "a", "server", 3_000, false),
            ],
            now,
        );
        let again = Red::restore(RedOptions::default(), &red.snapshot()).unwrap();
        let services = ["web".to_string()];
        let window = Window {
            services: &services,
            span_kinds: &[SpanKind::Server],
            group_by_operation: true,
            end: now,
            lookback: Duration::from_secs(60),
            step: Duration::from_secs(60),
            rate_per: Duration::from_secs(600),
        };
        for figure in [Figure::CallRate, Figure::ErrorRate, Figure::Latency(0.5)] {
            assert_eq!(red.query(&window, figure), again.query(&window, figure));
        }
        assert_eq!(again.series(), 1);
        assert!(Red::restore(RedOptions::default(), b"not json").is_err());
    }

    #[test]
    fn series_are_bounded_and_old_buckets_dropped() {
        let red = Red::new(RedOptions {
            retention: Duration::from_secs(3600),
            max_series: 2,
        });
        let web = process("web");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        red.record(
            &[
                span(&web, "a", "server", 10, false),
                span(&web, "b", "server", 10, false),
                span(&web, "c", "server", 10, false),
            ],
            now,
        );
        assert_eq!((red.series(), red.dropped_spans()), (2, 1));
        // two hours on, the first minute is past the retention
        let later = now + Duration::from_secs(7200);
        red.record(&[span(&web, "a", "server", 10, false)], later);
        {
            let services = red.services.lock().unwrap();
            assert_eq!(
                services["web"][kind_index(SpanKind::Server)]["a"]
                    .buckets
                    .len(),
                1
            );
        }
        let totals = red.totals();
        assert_eq!(
            totals
                .iter()
                .map(|t| (t.operation.as_str(), t.calls))
                .collect::<Vec<_>>(),
            [("a", 2), ("b", 1)]
        );
        assert_eq!(totals[0].buckets.last(), Some(&(f64::INFINITY, 2)));
        assert_eq!(
            totals[0].ok_exemplar.as_deref(),
            Some("00000000000000000000000000000001")
        );
        assert_eq!(totals[0].error_exemplar, None);
    }
}
