//! Every count the collector keeps, in one place.
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The protocol a span arrived by.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Transport {
    JaegerGrpc,
    JaegerHttp,
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
    /// The agent of the same process (the all-in-one), handing spans over
    /// directly.
    Agent,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::JaegerGrpc => "grpc",
            Transport::JaegerHttp => "http",
            Transport::OtlpGrpc => "otlp_grpc",
            Transport::OtlpHttp => "otlp_http",
            Transport::Zipkin => "zipkin",
            Transport::Agent => "agent",
        }
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: Transport,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    pub transport: Transport,
    pub reason: &'static str,
}

pub struct CollectorMetrics {
    pub spans_received: Family<TransportLabel, Counter>,
    pub spans_accepted: Family<TransportLabel, Counter>,
    pub spans_rejected: Family<RejectLabel, Counter>,
    pub spans_dropped: Family<TransportLabel, Counter>,
    pub requests_rejected: Family<RejectLabel, Counter>,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
    pub queue_capacity_bytes: Gauge,
    pub spans_written: Counter,
    pub write_failures: Counter,
    pub spans_refused_by_storage: Counter,
    pub write_latency: Histogram,
    pub strategies_served: Counter,
}

impl CollectorMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = CollectorMetrics {
            spans_received: Family::default(),
            spans_accepted: Family::default(),
            spans_rejected: Family::default(),
            spans_dropped: Family::default(),
            requests_rejected: Family::default(),
            queue_length: Gauge::default(),
            queue_capacity: Gauge::default(),
            queue_capacity_bytes: Gauge::default(),
            spans_written: Counter::default(),
            write_failures: Counter::default(),
            spans_refused_by_storage: Counter::default(),
            write_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            strategies_served: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("spoor_collector");
        r.register(
            "spans_received",
            "Spans received, by transport",
            m.spans_received.clone(),
        );
        r.register(
            "spans_accepted",
            "Spans accepted into the queue, by transport",
            m.spans_accepted.clone(),
        );
        r.register(
            "spans_rejected",
            "Spans refused, by transport and reason",
            m.spans_rejected.clone(),
        );
        r.register(
            "spans_dropped",
            "Spans discarded because the queue was full (drop mode)",
            m.spans_dropped.clone(),
        );
        r.register(
            "requests_rejected",
            "Requests refused whole, by transport and reason",
            m.requests_rejected.clone(),
        );
        r.register(
            "queue_length",
            "Spans waiting in the queue",
            m.queue_length.clone(),
        );
        r.register(
            "queue_capacity",
            "Spans the queue can hold; -1 when bounded by bytes only",
            m.queue_capacity.clone(),
        );
        r.register(
            "queue_capacity_bytes",
            "Estimated bytes of spans the queue can hold",
            m.queue_capacity_bytes.clone(),
        );
        r.register(
            "spans_written",
            "Spans written to storage",
            m.spans_written.clone(),
        );
        r.register(
            "storage_write_failures",
            "Batches the storage refused",
            m.write_failures.clone(),
        );
        r.register(
            "spans_refused_by_storage",
            "Spans of written batches the storage would not keep (a bound of the store)",
            m.spans_refused_by_storage.clone(),
        );
        r.register(
            "storage_write_seconds",
            "Time to write one batch to storage",
            m.write_latency.clone(),
        );
        r.register(
            "sampling_strategies_served",
            "Sampling strategies answered to agents and clients",
            m.strategies_served.clone(),
        );
        m
    }

    pub fn reject_request(&self, transport: Transport, reason: &'static str) {
        self.requests_rejected
            .get_or_create(&RejectLabel { transport, reason })
            .inc();
    }
}
