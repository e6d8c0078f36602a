//! Deterministic trace generation: the same seed gives the same traces, so a
//! query run can find the traces a send run stored.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

#[derive(Args, Debug, Clone)]
pub struct GenOptions {
    /// Distinct services spans are spread over.
    #[arg(long, default_value_t = 10)]
    pub services: usize,
    /// Spans in each trace.
    #[arg(long, default_value_t = 10)]
    pub spans_per_trace: usize,
    /// Depth of each trace's span tree.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Extra attributes on each span, besides the HTTP/DB ones.
    #[arg(long, default_value_t = 5)]
    pub attributes: usize,
    /// Fraction of traces that carry an error span.
    #[arg(long, default_value_t = 0.05)]
    pub error_rate: f64,
    /// Seed of the generator; traces are a function of (seed, index).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub const OPERATIONS: [&str; 8] = [
    "GET /api/orders",
    "POST /api/orders",
    "GET /api/users/{id}",
    "SELECT orders",
    "INSERT payments",
    "publish order.created",
    "consume order.created",
    "GET /health",
];
const WORDS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

pub struct Generator {
    options: GenOptions,
    processes: Vec<Arc<Process>>,
}

/// The trace id of trace number `index` for `seed`, for finding it later.
pub fn trace_id(seed: u64, index: u64) -> TraceId {
    let mut rng = SmallRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    TraceId(rng.random::<u128>() | 1)
}

impl Generator {
    pub fn new(options: GenOptions) -> Self {
        let processes = (0..options.services.max(1))
            .map(|i| {
                Arc::new(Process {
                    service_name: format!("tracegen-svc-{i}"),
                    tags: vec![
                        KeyValue::string("host.name", format!("node-{}", i % 4)),
                        KeyValue::new("process.pid", Value::Int64(1000 + i as i64)),
                        KeyValue::string("telemetry.sdk.name", "spoor-tracegen"),
                    ],
                })
            })
            .collect();
        Generator { options, processes }
    }

    pub fn service_names(&self) -> Vec<String> {
        self.processes
            .iter()
            .map(|p| p.service_name.clone())
            .collect()
    }

    /// Trace number `index`, starting at `start`.
    pub fn trace(&self, index: u64, start: SystemTime) -> Vec<Span> {
        let o = &self.options;
        let trace_id = trace_id(o.seed, index);
        let mut rng = SmallRng::seed_from_u64(trace_id.low());
        let error_span = rng
            .random_bool(o.error_rate.clamp(0.0, 1.0))
            .then(|| rng.random_range(0..o.spans_per_trace.max(1)));
        let mut spans: Vec<Span> = Vec::with_capacity(o.spans_per_trace);
        // depth of each span, so parents can be chosen to give the tree its depth
        let mut depths: Vec<usize> = Vec::with_capacity(o.spans_per_trace);
        for i in 0..o.spans_per_trace.max(1) {
            let (parent, depth) = if i == 0 {
                (None, 0)
            } else {
                let candidates: Vec<usize> =
                    (0..i).filter(|&p| depths[p] + 1 < o.depth.max(2)).collect();
                let p = candidates[rng.random_range(0..candidates.len())];
                (Some(p), depths[p] + 1)
            };
            depths.push(depth);
            let process = if i == 0 {
                Arc::clone(&self.processes[0])
            } else {
                Arc::clone(&self.processes[rng.random_range(0..self.processes.len())])
            };
            let offset = Duration::from_micros(depth as u64 * 150 + rng.random_range(0..100));
            let duration = Duration::from_micros(rng.random_range(50..50_000) >> depth.min(4));
            let mut tags = vec![
                KeyValue::string(
                    "span.kind",
                    if depth % 2 == 0 { "server" } else { "client" },
                ),
                KeyValue::string(
                    "http.method",
                    if rng.random_bool(0.7) { "GET" } else { "POST" },
                ),
                KeyValue::new(
                    "http.status_code",
                    Value::Int64(if Some(i) == error_span { 500 } else { 200 }),
                ),
            ];
            for a in 0..o.attributes {
                let value = match a % 3 {
                    0 => Value::String(format!(
                        "{}-{}",
                        WORDS[rng.random_range(0..WORDS.len())],
                        rng.random_range(0..1000)
                    )),
                    1 => Value::Int64(rng.random_range(0..1_000_000)),
                    _ => Value::Float64(rng.random_range(0.0..100.0)),
                };
                tags.push(KeyValue::new(format!("app.attr_{a}"), value));
            }
            let mut logs = Vec::new();
            if Some(i) == error_span {
                tags.push(KeyValue::new("error", Value::Bool(true)));
                logs.push(Log {
                    timestamp: start + offset,
                    fields: vec![
                        KeyValue::string("event", "exception"),
                        KeyValue::string("exception.message", "upstream timed out"),
                    ],
                });
            }
            spans.push(Span {
                trace_id,
                span_id: SpanId(rng.random::<u64>() | 1),
                operation_name: OPERATIONS[rng.random_range(0..OPERATIONS.len())].to_string(),
                references: parent
                    .map(|p| SpanRef {
                        trace_id,
                        span_id: spans[p].span_id,
                        ref_type: RefType::ChildOf,
                    })
                    .into_iter()
                    .collect(),
                flags: 1,
                start_time: start + offset,
                duration,
                tags,
                logs,
                process,
                warnings: vec![],
            });
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_deterministic_trees_of_the_asked_shape() {
        let options = GenOptions {
            services: 3,
            spans_per_trace: 12,
            depth: 3,
            attributes: 4,
            error_rate: 1.0,
            seed: 7,
        };
        let g = Generator::new(options);
        let now = SystemTime::now();
        let a = g.trace(5, now);
        assert_eq!(a, g.trace(5, now));
        assert_eq!(a.len(), 12);
        assert!(a.iter().all(|s| s.trace_id == trace_id(7, 5)));
        assert!(a.iter().skip(1).all(|s| s.parent_span_id().is_some()));
        assert_eq!(a.iter().filter(|s| s.is_error()).count(), 1);
        assert_ne!(trace_id(7, 5), trace_id(7, 6));
    }
}
