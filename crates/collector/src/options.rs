use std::net::SocketAddr;
use std::sync::Arc;

use clap::{ArgAction, Args, ValueEnum};
use spoor_server::net::parse_host_port;

/// MiB of spans the queue holds by default: a few seconds of peak ingest
/// (about 400,000 spans of 600 bytes), so clients flushing large batches at
/// once are not refused while the store keeps up.
pub const DEFAULT_QUEUE_SIZE_MEMORY_MIB: usize = 256;
pub const DEFAULT_NUM_WORKERS: usize = 50;
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// What the collector does with a batch when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueueFullAction {
    /// Refuse the batch so the client retries later (gRPC RESOURCE_EXHAUSTED, HTTP 429).
    Reject,
    /// Accept and discard the batch, counting the spans as dropped.
    Drop,
}

spoor_tls::server_tls_options!(GrpcTls, "collector.grpc", "COLLECTOR_GRPC");
spoor_tls::server_tls_options!(HttpTls, "collector.http", "COLLECTOR_HTTP");
spoor_tls::server_tls_options!(ZipkinTls, "collector.zipkin", "COLLECTOR_ZIPKIN");
spoor_tls::server_tls_options!(OtlpGrpcTls, "collector.otlp.grpc", "COLLECTOR_OTLP_GRPC");
spoor_tls::server_tls_options!(OtlpHttpTls, "collector.otlp.http", "COLLECTOR_OTLP_HTTP");

/// The TLS of each collector port, `None` where it serves clear text.
#[derive(Clone, Default)]
pub struct PortsTls {
    pub grpc: Option<Arc<spoor_tls::Acceptor>>,
    pub http: Option<Arc<spoor_tls::Acceptor>>,
    pub zipkin: Option<Arc<spoor_tls::Acceptor>>,
    pub otlp_grpc: Option<Arc<spoor_tls::Acceptor>>,
    pub otlp_http: Option<Arc<spoor_tls::Acceptor>>,
}

#[derive(Args, Clone, Debug)]
pub struct CollectorOptions {
    #[command(flatten)]
    pub grpc_tls: GrpcTls,
    #[command(flatten)]
    pub http_tls: HttpTls,
    #[command(flatten)]
    pub zipkin_tls: ZipkinTls,
    #[command(flatten)]
    pub otlp_grpc_tls: OtlpGrpcTls,
    #[command(flatten)]
    pub otlp_http_tls: OtlpHttpTls,

    /// Jaeger gRPC (api_v2 CollectorService) listen address.
    #[arg(
        long = "collector.grpc-server.host-port",
        env = "COLLECTOR_GRPC_SERVER_HOST_PORT",
        default_value = ":14250"
    )]
    pub grpc_host_port: String,

    /// Largest gRPC message accepted, in bytes, for Jaeger and OTLP gRPC.
    #[arg(long = "collector.grpc-server.max-message-size", env = "COLLECTOR_GRPC_SERVER_MAX_MESSAGE_SIZE", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    pub grpc_max_message_size: usize,

    /// Jaeger HTTP (Thrift `POST /api/traces`) listen address.
    #[arg(
        long = "collector.http-server.host-port",
        env = "COLLECTOR_HTTP_SERVER_HOST_PORT",
        default_value = ":14268"
    )]
    pub http_host_port: String,

    /// Largest Jaeger HTTP request body, in bytes.
    #[arg(long = "collector.http-server.max-request-size", env = "COLLECTOR_HTTP_SERVER_MAX_REQUEST_SIZE", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    pub http_max_request_size: usize,

    /// Zipkin HTTP (/api/v1/spans, /api/v2/spans) listen address; empty or "off"
    /// disables it (the all-in-one serves :9411 unless told otherwise).
    #[arg(
        long = "collector.zipkin.host-port",
        env = "COLLECTOR_ZIPKIN_HOST_PORT",
        default_value = ""
    )]
    pub zipkin_host_port: String,

    /// Accept OTLP over gRPC and HTTP.
    #[arg(long = "collector.otlp.enabled", env = "COLLECTOR_OTLP_ENABLED", default_value_t = true, action = ArgAction::Set)]
    pub otlp_enabled: bool,

    /// OTLP gRPC listen address.
    #[arg(
        long = "collector.otlp.grpc.host-port",
        env = "COLLECTOR_OTLP_GRPC_HOST_PORT",
        default_value = ":4317"
    )]
    pub otlp_grpc_host_port: String,

    /// OTLP HTTP listen address.
    #[arg(
        long = "collector.otlp.http.host-port",
        env = "COLLECTOR_OTLP_HTTP_HOST_PORT",
        default_value = ":4318"
    )]
    pub otlp_http_host_port: String,

    /// Largest OTLP HTTP request body, in bytes, before and after decompression.
    #[arg(long = "collector.otlp.http.max-request-size", env = "COLLECTOR_OTLP_HTTP_MAX_REQUEST_SIZE", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    pub otlp_http_max_request_size: usize,

    /// MiB of spans (their estimated memory) the queue between receivers and
    /// writers holds, queued and being written.
    #[arg(long = "collector.queue-size-memory", env = "COLLECTOR_QUEUE_SIZE_MEMORY", default_value_t = DEFAULT_QUEUE_SIZE_MEMORY_MIB)]
    pub queue_size_memory: usize,

    /// Spans the queue holds at most, besides its memory bound (Jaeger's
    /// option; unset, the queue is bounded by memory only).
    #[arg(long = "collector.queue-size", env = "COLLECTOR_QUEUE_SIZE")]
    pub queue_size: Option<usize>,

    /// Workers writing from the queue to storage.
    #[arg(long = "collector.num-workers", env = "COLLECTOR_NUM_WORKERS", default_value_t = DEFAULT_NUM_WORKERS)]
    pub num_workers: usize,

    /// What to do with a batch when the queue is full.
    #[arg(
        long = "collector.queue-full-action",
        env = "COLLECTOR_QUEUE_FULL_ACTION",
        value_enum,
        default_value = "reject"
    )]
    pub queue_full_action: QueueFullAction,

    /// Answer clients only once their spans are written (a failed write
    /// answers 503 / UNAVAILABLE, and the client retries; spans the store
    /// would not keep are reported to the client). Default: on for the
    /// embedded store, so an acknowledged span survives a crash, and for the
    /// memory store, so spans over its per-trace bound are reported; off
    /// otherwise, as in Jaeger (acknowledged when queued).
    #[arg(long = "collector.ack-after-write", env = "COLLECTOR_ACK_AFTER_WRITE", action = ArgAction::Set)]
    pub ack_after_write: Option<bool>,

    /// Where spans still queued at the shutdown deadline are kept, to be
    /// written at the next start, instead of lost. Default: `spill` in the
    /// embedded store's data directory; none for other stores.
    #[arg(long = "collector.spill-dir", env = "COLLECTOR_SPILL_DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
}

impl CollectorOptions {
    /// The ports' TLS acceptors; an error names the flag that cannot serve.
    pub fn ports_tls(&self) -> Result<PortsTls, spoor_tls::ServerTlsError> {
        Ok(PortsTls {
            grpc: self.grpc_tls.acceptor()?,
            http: self.http_tls.acceptor()?,
            zipkin: self.zipkin_tls.acceptor()?,
            otlp_grpc: self.otlp_grpc_tls.acceptor()?,
            otlp_http: self.otlp_http_tls.acceptor()?,
        })
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.queue_size != Some(0),
            "collector.queue-size must be at least 1"
        );
        anyhow::ensure!(
            self.queue_size_memory > 0,
            "collector.queue-size-memory must be at least 1 (MiB)"
        );
        anyhow::ensure!(
            self.num_workers > 0,
            "collector.num-workers must be at least 1"
        );
        anyhow::ensure!(
            self.grpc_max_message_size > 0,
            "collector.grpc-server.max-message-size must be positive"
        );
        Ok(())
    }
    pub fn queue_bounds(&self) -> crate::queue::QueueBounds {
        crate::queue::QueueBounds {
            bytes: self.queue_size_memory.saturating_mul(1 << 20),
            spans: self.queue_size,
        }
    }
    pub fn grpc_addr(&self) -> anyhow::Result<SocketAddr> {
        parse_host_port(&self.grpc_host_port).map_err(anyhow::Error::from)
    }
    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        parse_host_port(&self.http_host_port).map_err(anyhow::Error::from)
    }
    /// The Zipkin address, or None when Zipkin is off.
    pub fn zipkin_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.zipkin_host_port.trim() {
            "" | "off" => Ok(None),
            hp => parse_host_port(hp).map(Some).map_err(anyhow::Error::from),
        }
    }
    pub fn otlp_grpc_addr(&self) -> anyhow::Result<SocketAddr> {
        parse_host_port(&self.otlp_grpc_host_port).map_err(anyhow::Error::from)
    }
    pub fn otlp_http_addr(&self) -> anyhow::Result<SocketAddr> {
        parse_host_port(&self.otlp_http_host_port).map_err(anyhow::Error::from)
    }
}
