//! The RED metrics' totals on the admin port's `/metrics`, named as the
//! OpenTelemetry Collector's spanmetrics connector names them
//! (`traces_span_metrics_calls_total`, `traces_span_metrics_duration_milliseconds`),
//! so a Prometheus that scrapes Spoor serves Jaeger's own Prometheus-backed
//! Monitor tab as well. Each call count carries the latest trace counted in
//! it as an OpenMetrics exemplar (`trace_id`).
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::CounterWithExemplar;
use spoor_model::SpanKind;

/// The connector's default histogram bounds, in milliseconds.
const BOUNDS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];

pub struct RedExport(pub Arc<spoor_red::Red>);

impl std::fmt::Debug for RedExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedExport")
    }
}

fn otel_kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

impl Collector for RedExport {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.0.totals();
        let dropped = ConstCounter::new(self.0.dropped_spans());
        dropped.encode(encoder.encode_descriptor(
            "spoor_spm_spans_dropped",
            "Spans left out of RED metrics: their series would pass --spm.max-series",
            None,
            dropped.metric_type(),
        )?)?;
        {
            let mut family = encoder.encode_descriptor(
                "traces_span_metrics_calls",
                "Spans the collector took, by service, operation, span kind and status",
                None,
                MetricType::Counter,
            )?;
            for t in &totals {
                for (status, n, exemplar) in [
                    ("STATUS_CODE_UNSET", t.calls - t.errors, &t.ok_exemplar),
                    ("STATUS_CODE_ERROR", t.errors, &t.error_exemplar),
                ] {
                    if n == 0 {
                        continue;
                    }
                    let labels = [
                        ("service_name", t.service.as_str()),
                        ("span_name", t.operation.as_str()),
                        ("span_kind", otel_kind(t.span_kind)),
                        ("status_code", status),
                    ];
                    // the latest trace counted here, as its exemplar
                    let counter = CounterWithExemplar::<Vec<(&str, String)>>::default();
                    counter.inc_by(n, exemplar.clone().map(|id| vec![("trace_id", id)]), None);
                    counter.encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "traces_span_metrics_duration_milliseconds",
            "Span durations, by service, operation and span kind",
            None,
            MetricType::Histogram,
        )?;
        for t in &totals {
            // the totals' bins re-counted into the fixed bounds: a bin goes
            // to the first bound its upper edge does not pass
            let buckets: Vec<(f64, u64)> = BOUNDS_MS
                .iter()
                .map(|&le| {
                    let n = t
                        .buckets
                        .iter()
                        .take_while(|(upper_s, _)| upper_s * 1000.0 <= le)
                        .last()
                        .map_or(0, |(_, n)| *n);
                    (le, n)
                })
                .chain([(f64::INFINITY, t.calls)])
                .collect();
            let labels = [
                ("service_name", t.service.as_str()),
                ("span_name", t.operation.as_str()),
                ("span_kind", otel_kind(t.span_kind)),
            ];
            family
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    t.sum_seconds * 1000.0,
                    t.calls,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}
