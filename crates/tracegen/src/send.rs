//! `spoor-tracegen send`: batches of generated spans over the chosen protocol,
//! from several concurrent workers, at a target rate or flat out.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use spoor_model::Span;
use spoor_proto::api_v2::collector_service_client::CollectorServiceClient;
use spoor_proto::api_v2::{Batch, PostSpansRequest};

use crate::generate::{GenOptions, Generator};
use crate::report::Latencies;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Protocol {
    OtlpGrpc,
    OtlpHttp,
    JaegerGrpc,
    /// Agent.emitBatch datagrams in Thrift compact (agent port 6831).
    JaegerUdpCompact,
    /// Agent.emitBatch datagrams in Thrift binary (agent port 6832).
    JaegerUdpBinary,
}

#[derive(Args, Debug)]
pub struct SendOptions {
    #[arg(long, value_enum, default_value = "otlp-grpc")]
    pub protocol: Protocol,
    /// Collector address: host:port for gRPC, a base URL for OTLP HTTP.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub endpoint: String,
    /// Target spans per second over all workers; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total traces to send.
    #[arg(long, default_value_t = 10_000)]
    pub traces: u64,
    /// Index of the first trace (to continue an earlier run with new traces).
    #[arg(long, default_value_t = 0)]
    pub first_trace: u64,
    /// Traces per request.
    #[arg(long, default_value_t = 50)]
    pub batch_traces: u64,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub workers: u64,
    #[command(flatten)]
    pub generate: GenOptions,
}

enum Client {
    Udp(tokio::net::UdpSocket, spoor_codec::thrift::Protocol),
    OtlpGrpc(TraceServiceClient<tonic::transport::Channel>),
    OtlpHttp(reqwest::Client, String),
    JaegerGrpc(CollectorServiceClient<tonic::transport::Channel>),
}

impl Client {
    async fn connect(o: &SendOptions) -> anyhow::Result<Client> {
        let grpc_url = format!("http://{}", o.endpoint);
        let udp = |protocol| async move {
            let agent = tokio::net::lookup_host(&o.endpoint)
                .await
                .context("while resolving the agent address")?
                .next()
                .context("the agent address resolves to nothing")?;
            // any local address of the agent's family: a socket bound to
            // loopback cannot reach an agent on another host
            let local: std::net::SocketAddr = if agent.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = tokio::net::UdpSocket::bind(local).await?;
            socket.connect(agent).await?;
            anyhow::Ok(Client::Udp(socket, protocol))
        };
        Ok(match o.protocol {
            Protocol::JaegerUdpCompact => udp(spoor_codec::thrift::Protocol::Compact).await?,
            Protocol::JaegerUdpBinary => udp(spoor_codec::thrift::Protocol::Binary).await?,
            Protocol::OtlpGrpc => Client::OtlpGrpc(
                TraceServiceClient::connect(grpc_url)
                    .await
                    .context("while connecting over OTLP gRPC")?,
            ),
            Protocol::JaegerGrpc => Client::JaegerGrpc(
                CollectorServiceClient::connect(grpc_url)
                    .await
                    .context("while connecting over Jaeger gRPC")?,
            ),
            Protocol::OtlpHttp => {
                let base = if o.endpoint.starts_with("http") {
                    o.endpoint.clone()
                } else {
                    format!("http://{}", o.endpoint)
                };
                Client::OtlpHttp(
                    reqwest::Client::new(),
                    format!("{}/v1/traces", base.trim_end_matches('/')),
                )
            }
        })
    }

    /// Sends one batch; returns its encoded size in bytes.
    async fn send(&mut self, spans: &[Span]) -> anyhow::Result<usize> {
        match self {
            Client::Udp(socket, protocol) => {
                // one datagram per process, as Jaeger clients batch
                let mut size = 0;
                let mut rest: Vec<&Span> = spans.iter().collect();
                while let Some(first) = rest.first() {
                    let process = std::sync::Arc::clone(&first.process);
                    let (same, other): (Vec<&Span>, Vec<&Span>) = rest
                        .into_iter()
                        .partition(|s| std::sync::Arc::ptr_eq(&s.process, &process));
                    let group: Vec<Span> = same.into_iter().cloned().collect();
                    let datagram =
                        spoor_codec::thrift::encode_emit_batch(&process, &group, *protocol, 0);
                    anyhow::ensure!(
                        datagram.len() <= 65_000,
                        "datagram of {} bytes; send fewer spans per batch",
                        datagram.len()
                    );
                    size += socket.send(&datagram).await?;
                    rest = other;
                }
                Ok(size)
            }
            Client::OtlpGrpc(c) => {
                let req = ExportTraceServiceRequest {
                    resource_spans: spoor_codec::otlp::spans_to_otlp(spans),
                };
                let size = req.encoded_len();
                let resp = c.export(req).await?.into_inner();
                if let Some(p) = resp.partial_success.filter(|p| p.rejected_spans > 0) {
                    anyhow::bail!("{} spans rejected: {}", p.rejected_spans, p.error_message);
                }
                Ok(size)
            }
            Client::OtlpHttp(c, url) => {
                let body = ExportTraceServiceRequest {
                    resource_spans: spoor_codec::otlp::spans_to_otlp(spans),
                }
                .encode_to_vec();
                let size = body.len();
                let resp = c
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
                Ok(size)
            }
            Client::JaegerGrpc(c) => {
                // each span carries its process, so one request holds many services
                let batch = Batch {
                    spans: spans.iter().map(spoor_proto::span_to_proto).collect(),
                    process: None,
                };
                let req = PostSpansRequest { batch: Some(batch) };
                let size = req.encoded_len();
                c.post_spans(req).await?;
                Ok(size)
            }
        }
    }
}

#[derive(Default)]
struct Totals {
    spans: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

pub async fn run(o: SendOptions) -> anyhow::Result<()> {
    let generator = Arc::new(Generator::new(o.generate.clone()));
    let next = Arc::new(AtomicU64::new(o.first_trace));
    let end = o.first_trace + o.traces;
    let totals = Arc::new(Totals::default());
    let spans_per_batch = o.batch_traces * o.generate.spans_per_trace as u64;
    // each worker paces itself to its share of the rate
    let interval = (o.rate > 0).then(|| {
        Duration::from_secs_f64(spans_per_batch as f64 * o.workers as f64 / o.rate as f64)
    });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..o.workers.max(1) {
        let mut client = Client::connect(&o).await?;
        let (generator, next, totals) = (
            Arc::clone(&generator),
            Arc::clone(&next),
            Arc::clone(&totals),
        );
        let batch_traces = o.batch_traces.max(1);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut due = Instant::now();
            loop {
                let first = next.fetch_add(batch_traces, Ordering::Relaxed);
                if first >= end {
                    return latencies;
                }
                let now = SystemTime::now();
                let spans: Vec<Span> = (first..(first + batch_traces).min(end))
                    .flat_map(|i| generator.trace(i, now))
                    .collect();
                let sent = Instant::now();
                match client.send(&spans).await {
                    Ok(bytes) => {
                        totals
                            .spans
                            .fetch_add(spans.len() as u64, Ordering::Relaxed);
                        totals.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if totals.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("send failed: {e:#}");
                        }
                    }
                }
                latencies.push(sent.elapsed());
                if let Some(interval) = interval {
                    due += interval;
                    tokio::time::sleep_until(due.into()).await;
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let spans = totals.spans.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    // the size the memory target compares with: an api_v2 span without its process
    let sample = generator.trace(0, SystemTime::now());
    let proto_bytes: usize = sample
        .iter()
        .map(|s| {
            spoor_proto::api_v2::Span {
                process: None,
                ..spoor_proto::span_to_proto(s)
            }
            .encoded_len()
        })
        .sum();
    let report = serde_json::json!({
        "protocol": format!("{:?}", o.protocol),
        "api_v2_span_bytes": proto_bytes / sample.len().max(1),
        "spans_sent": spans,
        "requests_failed": totals.errors.load(Ordering::Relaxed),
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "spans_per_second": (spans as f64 / elapsed).round(),
        "bytes_per_span": bytes.checked_div(spans).unwrap_or(0),
        "request_latency": Latencies::new(all).json(),
    });
    println!("{report}");
    Ok(())
}
