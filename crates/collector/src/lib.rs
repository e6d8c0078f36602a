//! The collector: receives spans over Jaeger gRPC (14250), Jaeger Thrift
//! HTTP (14268), Zipkin (9411, when enabled) and OTLP gRPC (4317) and HTTP
//! (4318), validates them, and hands them through a bounded queue to
//! writer workers that store them.
//!
//! Receivers only translate wire formats; [`SpanProcessor`] holds the rules
//! (validation, counting, backpressure) so they are the same for every protocol.

mod body;
mod grpc;
mod jaeger_http;
mod metrics;
mod options;
mod otlp_http;
mod processor;
mod queue;
mod red_export;
mod retry;
mod sampling;
mod spill;
mod zipkin_http;

pub use metrics::{CollectorMetrics, Transport};
pub use options::{CollectorOptions, PortsTls, QueueFullAction};
pub use processor::{Outcome, ProcessError, SpanProcessor};

use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use spoor_server::auth::Role;
use spoor_server::serve::{Listener, Serving};
use spoor_storage::SpanWriter;

/// Where a collector listens.
#[derive(Clone, Copy, Debug)]
pub struct CollectorAddrs {
    pub grpc: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    pub zipkin: Option<std::net::SocketAddr>,
    pub otlp_grpc: Option<std::net::SocketAddr>,
    pub otlp_http: Option<std::net::SocketAddr>,
}

/// Bound listeners and the processor, ready to serve. Binding first lets
/// callers (and tests) learn the real ports before serving starts.
pub struct Collector {
    options: CollectorOptions,
    processor: Arc<SpanProcessor>,
    strategies: Arc<sampling::Strategies>,
    workers: queue::Workers,
    tls: PortsTls,
    grpc: tokio::net::TcpListener,
    http: tokio::net::TcpListener,
    zipkin: Option<tokio::net::TcpListener>,
    otlp: Option<(tokio::net::TcpListener, tokio::net::TcpListener)>,
}

impl Collector {
    pub async fn bind(
        options: CollectorOptions,
        writer: Arc<dyn SpanWriter>,
        sampling: &spoor_sampling::Sampling,
        red: Option<Arc<spoor_red::Red>>,
        registry: &mut Registry,
    ) -> anyhow::Result<Self> {
        options.validate()?;
        let tls = options.ports_tls()?;
        if let Some(dir) = &options.spill_dir {
            let replayed = spill::replay(dir, writer.as_ref()).await?;
            if replayed > 0 {
                tracing::info!(
                    spans = replayed,
                    "spans spilled at the last shutdown written"
                );
            }
        }
        let metrics = Arc::new(CollectorMetrics::new(registry));
        let (queue, workers) = queue::start(
            options.queue_bounds(),
            options.num_workers,
            writer,
            Arc::clone(&metrics),
            options.spill_dir.is_some(),
        );
        let strategies = Arc::new(sampling::Strategies::new(
            Arc::clone(&sampling.provider),
            metrics.strategies_served.clone(),
        ));
        let mut processor = SpanProcessor::new(queue, options.queue_full_action, metrics)
            .ack_after_write(options.ack_after_write.unwrap_or(false));
        if let Some(aggregator) = &sampling.aggregator {
            processor = processor.with_throughput(Arc::clone(aggregator));
        }
        if let Some(red) = red {
            registry.register_collector(Box::new(red_export::RedExport(Arc::clone(&red))));
            processor = processor.with_red(red);
        }
        let processor = Arc::new(processor);
        let grpc = spoor_server::net::bind(options.grpc_addr()?, "collector gRPC").await?;
        let http = spoor_server::net::bind(options.http_addr()?, "collector HTTP").await?;
        let zipkin = match options.zipkin_addr()? {
            Some(addr) => Some(spoor_server::net::bind(addr, "Zipkin HTTP").await?),
            None => None,
        };
        let otlp = if options.otlp_enabled {
            Some((
                spoor_server::net::bind(options.otlp_grpc_addr()?, "OTLP gRPC").await?,
                spoor_server::net::bind(options.otlp_http_addr()?, "OTLP HTTP").await?,
            ))
        } else {
            None
        };
        Ok(Collector {
            options,
            processor,
            strategies,
            workers,
            tls,
            grpc,
            http,
            zipkin,
            otlp,
        })
    }

    /// The processor the receivers hand spans to, for a receiver in the
    /// same process (the all-in-one's agent).
    pub fn processor(&self) -> Arc<SpanProcessor> {
        Arc::clone(&self.processor)
    }

    /// The addresses the listeners are bound to.
    pub fn local_addrs(&self) -> CollectorAddrs {
        let addr =
            |l: &tokio::net::TcpListener| l.local_addr().expect("bound listener has an address");
        CollectorAddrs {
            grpc: addr(&self.grpc),
            http: addr(&self.http),
            zipkin: self.zipkin.as_ref().map(addr),
            otlp_grpc: self.otlp.as_ref().map(|(g, _)| addr(g)),
            otlp_http: self.otlp.as_ref().map(|(_, h)| addr(h)),
        }
    }

    /// Serves until `shutdown`, then stops intake and drains the queue.
    pub async fn run(self, serving: Serving) -> anyhow::Result<()> {
        let Collector {
            options,
            processor,
            strategies,
            workers,
            tls,
            grpc,
            http,
            zipkin,
            otlp,
        } = self;
        let port = |tcp, tls: &Option<Arc<spoor_tls::Acceptor>>| {
            Listener::new(tcp, tls.clone()).role(Role::Ingest)
        };
        let (grpc, http) = (port(grpc, &tls.grpc), port(http, &tls.http));
        let zipkin = zipkin.map(|z| port(z, &tls.zipkin));
        let otlp = otlp.map(|(g, h)| (port(g, &tls.otlp_grpc), port(h, &tls.otlp_http)));
        let max_message = options.grpc_max_message_size;
        let mut servers = tokio::task::JoinSet::new();
        let jaeger =
            grpc::jaeger_routes(Arc::clone(&processor), Arc::clone(&strategies), max_message);
        let s = serving.clone();
        servers.spawn(async move { s.grpc(grpc, jaeger, "Jaeger gRPC").await });
        let thrift = jaeger_http::router(
            Arc::clone(&processor),
            strategies,
            options.http_max_request_size,
        );
        let s = serving.clone();
        servers.spawn(async move { s.http(http, thrift, "Jaeger HTTP").await });
        if let Some(zipkin) = zipkin {
            let app = zipkin_http::router(Arc::clone(&processor), options.http_max_request_size);
            let s = serving.clone();
            servers.spawn(async move { s.http(zipkin, app, "Zipkin HTTP").await });
        }
        if let Some((otlp_grpc, otlp_http)) = otlp {
            let routes = grpc::otlp_routes(Arc::clone(&processor), max_message);
            let s = serving.clone();
            servers.spawn(async move { s.grpc(otlp_grpc, routes, "OTLP gRPC").await });
            let app = otlp_http::router(Arc::clone(&processor), options.otlp_http_max_request_size);
            let s = serving.clone();
            servers.spawn(async move { s.http(otlp_http, app, "OTLP HTTP").await });
        }
        drop(processor);
        let mut result = Ok(());
        while let Some(done) = servers.join_next().await {
            if let Err(e) = done.context("collector server task failed").and_then(|r| r) {
                tracing::error!(error = %e, "collector server stopped");
                result = Err(e);
            }
        }
        // every receiver is gone: the queue closes and the workers drain it
        let undrained = workers
            .drain(
                serving.options().shutdown_timeout,
                options.spill_dir.as_deref(),
            )
            .await;
        if undrained.lost > 0 {
            tracing::error!(
                spans = undrained.lost,
                "acknowledged spans lost: not written before the shutdown deadline (--shutdown.timeout)"
            );
            result = result.and(Err(anyhow::anyhow!(
                "{} acknowledged spans were not written before the shutdown deadline",
                undrained.lost
            )));
        }
        result
    }
}

#[cfg(test)]
mod test_support {
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prometheus_client::registry::Registry;
    use spoor_model::TraceId;
    use spoor_storage::SpanReader;
    use spoor_storage_memory::{MemoryConfig, MemoryStore};

    use crate::SpanProcessor;
    use crate::metrics::CollectorMetrics;
    use crate::options::QueueFullAction;

    /// A processor writing to a memory store through a queue of `queue_size` spans.
    pub fn processor(
        queue_size: usize,
    ) -> (Arc<SpanProcessor>, Arc<MemoryStore>, Arc<CollectorMetrics>) {
        let store = Arc::new(MemoryStore::new(MemoryConfig {
            max_traces: 0,
            max_bytes: 1 << 30,
        }));
        let metrics = Arc::new(CollectorMetrics::new(&mut Registry::default()));
        let (queue, workers) = crate::queue::start(
            crate::queue::QueueBounds::spans(queue_size),
            2,
            store.clone(),
            Arc::clone(&metrics),
            false,
        );
        std::mem::forget(workers); // the workers live as long as the test's runtime
        let processor = Arc::new(SpanProcessor::new(
            queue,
            QueueFullAction::Reject,
            Arc::clone(&metrics),
        ));
        (processor, store, metrics)
    }

    /// A request of one span (of service `web`) per trace id; id 0 is invalid.
    pub fn request_with(trace_ids: &[u128]) -> ExportTraceServiceRequest {
        let spans = trace_ids
            .iter()
            .map(|t| Span {
                trace_id: t.to_be_bytes().to_vec(),
                span_id: 7u64.to_be_bytes().to_vec(),
                name: "GET /".into(),
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_001_000_000,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("web".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// The answer to `request_with(&[0, 3])`: the zero trace id refused by
    /// name as a partial success, and trace 3 stored.
    pub async fn assert_zero_id_refused(answer: ExportTraceServiceResponse, store: &MemoryStore) {
        let partial = answer.partial_success.expect("partial success");
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial.error_message.contains("trace id is zero"),
            "{}",
            partial.error_message
        );
        assert!(stored(store, 3).await);
    }

    /// Whether trace `id` reaches the store within a second.
    pub async fn stored(store: &MemoryStore, id: u128) -> bool {
        for _ in 0..200 {
            if store.get_trace(TraceId(id)).await.unwrap().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}
