//! Request counts and latencies of the query service.
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

pub struct QueryMetrics {
    pub requests: Family<RequestLabel, Counter>,
    pub latency: Family<EndpointLabel, Histogram>,
}

impl QueryMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = QueryMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
            }),
        };
        let r = registry.sub_registry_with_prefix("spoor_query");
        r.register(
            "requests",
            "Query requests, by endpoint and status code",
            m.requests.clone(),
        );
        r.register(
            "latency_seconds",
            "Query latency, by endpoint",
            m.latency.clone(),
        );
        m
    }

    pub fn observe(&self, endpoint: String, status: u16, elapsed: Duration) {
        self.latency
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabel { endpoint, status })
            .inc();
    }
}
