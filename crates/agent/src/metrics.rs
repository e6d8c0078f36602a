//! Every count the agent keeps, in one place.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabel {
    /// jaeger_compact or jaeger_binary
    pub protocol: &'static str,
}

pub struct AgentMetrics {
    pub packets_received: Family<PortLabel, Counter>,
    /// Packets refused because the decode queue was full.
    pub packets_dropped: Family<PortLabel, Counter>,
    pub packets_too_large: Family<PortLabel, Counter>,
    pub decode_errors: Family<PortLabel, Counter>,
    pub packet_queue_length: Family<PortLabel, Gauge>,
    pub spans_received: Family<PortLabel, Counter>,
    pub spans_forwarded: Counter,
    pub batches_forwarded: Counter,
    /// PostSpans calls that failed (each is retried).
    pub forward_failures: Counter,
    /// Batches dropped because the forwarding buffer was full.
    pub batches_dropped: Counter,
    pub buffered_batches: Gauge,
    pub sampling_requests: Counter,
    /// Sampling requests no collector answered (a stale strategy may still have been served).
    pub sampling_errors: Counter,
}

impl AgentMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = AgentMetrics {
            packets_received: Family::default(),
            packets_dropped: Family::default(),
            packets_too_large: Family::default(),
            decode_errors: Family::default(),
            packet_queue_length: Family::default(),
            spans_received: Family::default(),
            spans_forwarded: Counter::default(),
            batches_forwarded: Counter::default(),
            forward_failures: Counter::default(),
            batches_dropped: Counter::default(),
            buffered_batches: Gauge::default(),
            sampling_requests: Counter::default(),
            sampling_errors: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("spoor_agent");
        r.register(
            "packets_received",
            "UDP packets received, by protocol",
            m.packets_received.clone(),
        );
        r.register(
            "packets_dropped",
            "UDP packets dropped because the decode queue was full",
            m.packets_dropped.clone(),
        );
        r.register(
            "packets_too_large",
            "UDP packets larger than the maximum packet size",
            m.packets_too_large.clone(),
        );
        r.register(
            "decode_errors",
            "UDP packets that could not be decoded",
            m.decode_errors.clone(),
        );
        r.register(
            "packet_queue_length",
            "UDP packets waiting to be decoded",
            m.packet_queue_length.clone(),
        );
        r.register(
            "spans_received",
            "Spans decoded from UDP packets",
            m.spans_received.clone(),
        );
        r.register(
            "spans_forwarded",
            "Spans delivered to a collector",
            m.spans_forwarded.clone(),
        );
        r.register(
            "batches_forwarded",
            "Batches delivered to a collector",
            m.batches_forwarded.clone(),
        );
        r.register(
            "forward_failures",
            "PostSpans calls that failed and were retried",
            m.forward_failures.clone(),
        );
        r.register(
            "batches_dropped",
            "Batches dropped because the forwarding buffer was full",
            m.batches_dropped.clone(),
        );
        r.register(
            "buffered_batches",
            "Batches waiting to be forwarded",
            m.buffered_batches.clone(),
        );
        r.register(
            "sampling_requests",
            "Sampling strategy requests from clients",
            m.sampling_requests.clone(),
        );
        r.register(
            "sampling_errors",
            "Sampling requests no collector answered",
            m.sampling_errors.clone(),
        );
        m
    }
}
