//! The agent: a host daemon that receives spans from Jaeger clients over UDP
//! (Jaeger Thrift compact on 6831, binary on 6832, Zipkin Thrift compact on
//! 5775), adds the host's tags, and
//! forwards them in batches to collectors over gRPC.

mod http;
mod kernel_drops;
mod metrics;
mod options;
mod reporter;
mod sink;
mod tags;
mod udp;

pub use metrics::AgentMetrics;
pub use options::AgentOptions;
pub use sink::{GrpcSink, ModelBatch, SendError, SpanSink};
pub use tags::parse_agent_tags;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use spoor_server::net::parse_host_port;
use spoor_server::serve::Serving;

/// How long shutdown waits for buffered batches to reach a collector.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an agent listens.
#[derive(Clone, Copy, Debug)]
pub struct AgentAddrs {
    pub compact: SocketAddr,
    pub binary: SocketAddr,
    pub zipkin: SocketAddr,
    pub http: SocketAddr,
}

pub struct Agent {
    options: AgentOptions,
    metrics: Arc<AgentMetrics>,
    ports: Vec<udp::Port>,
    http: tokio::net::TcpListener,
    http_tls: Option<Arc<spoor_tls::Acceptor>>,
    agent_tags: Vec<spoor_model::KeyValue>,
    /// Where batches go; None: the collectors of `options` over gRPC.
    sink: Option<Arc<dyn SpanSink>>,
}

impl Agent {
    pub async fn bind(options: AgentOptions, registry: &mut Registry) -> anyhow::Result<Self> {
        options.validate()?;
        let agent_tags = parse_agent_tags(&options.agent_tags, |v| std::env::var(v).ok())
            .map_err(anyhow::Error::from)?;
        let mut ports = Vec::new();
        for (format, host_port) in [
            (udp::Format::JaegerCompact, &options.compact_host_port),
            (udp::Format::JaegerBinary, &options.binary_host_port),
            (udp::Format::ZipkinCompact, &options.zipkin_udp_host_port),
        ] {
            let addr = parse_host_port(host_port).map_err(anyhow::Error::from)?;
            ports.push(udp::Port {
                format,
                socket: udp::bind(addr, options.udp_socket_buffer_size)?,
            });
        }
        let http_addr =
            parse_host_port(&options.sampling_host_port).map_err(anyhow::Error::from)?;
        let http_tls = options.sampling_tls.acceptor()?;
        let http = spoor_server::net::bind(http_addr, "agent HTTP").await?;
        let sockets = ports
            .iter()
            .map(|p| Ok((udp::label(p.format).protocol, p.socket.local_addr()?)))
            .collect::<std::io::Result<_>>()?;
        registry.register_collector(Box::new(kernel_drops::KernelDrops { sockets }));
        Ok(Agent {
            metrics: Arc::new(AgentMetrics::new(registry)),
            options,
            ports,
            http,
            http_tls,
            agent_tags,
            sink: None,
        })
    }

    /// Forwards to `sink` instead of the collectors over gRPC (sampling is
    /// still asked of the collectors).
    pub fn with_sink(mut self, sink: Arc<dyn SpanSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn local_addrs(&self) -> AgentAddrs {
        let addr = |i: usize| {
            self.ports[i]
                .socket
                .local_addr()
                .expect("bound socket has an address")
        };
        AgentAddrs {
            compact: addr(0),
            binary: addr(1),
            zipkin: addr(2),
            http: self
                .http
                .local_addr()
                .expect("bound listener has an address"),
        }
    }

    /// Serves until `shutdown`, then forwards what is buffered (10 s at most).
    pub async fn run(self, serving: Serving) -> anyhow::Result<()> {
        let shutdown = serving.shutdown();
        let Agent {
            options,
            metrics,
            ports,
            http,
            http_tls,
            agent_tags,
            sink,
        } = self;
        let channels = reporter::channels(&options)?;
        let proxy = Arc::new(http::SamplingProxy::new(
            channels.clone(),
            Arc::clone(&metrics),
        ));
        let sink = sink.unwrap_or_else(|| Arc::new(GrpcSink::new(channels)));
        let (reporter, senders) = reporter::start(
            sink,
            options.reporter_buffer_batches,
            options.reporter_senders,
            Arc::clone(&metrics),
            shutdown.clone(),
        )?;
        let settings = udp::Settings {
            max_packet_size: options.udp_max_packet_size,
            queue_size: options.udp_queue_size,
            workers: options.udp_workers,
            agent_tags,
        };
        let mut tasks = tokio::task::JoinSet::new();
        for port in ports {
            let metrics = Arc::clone(&metrics);
            udp::spawn(
                &mut tasks,
                port,
                &settings,
                reporter.clone(),
                metrics,
                shutdown.clone(),
            );
        }
        drop(reporter);
        let http = spoor_server::serve::Listener::new(http, http_tls);
        let http_server = serving.http(http, http::router(proxy), "agent HTTP");
        // receivers stop at shutdown; workers finish the queued packets
        let udp = async { while tasks.join_next().await.is_some() {} };
        let (http_result, ()) = tokio::join!(http_server, udp);
        senders
            .drain(serving.options().shutdown_timeout.min(DRAIN_TIMEOUT))
            .await;
        http_result
    }
}
