use std::time::Duration;

use clap::Args;

pub const DEFAULT_MAX_PACKET_SIZE: usize = 65_000;

spoor_tls::server_tls_options!(SamplingHttpTls, "http-server", "HTTP_SERVER");

#[derive(Args, Clone, Debug)]
pub struct AgentOptions {
    #[command(flatten)]
    pub sampling_tls: SamplingHttpTls,

    /// UDP address for Jaeger Thrift compact (Agent.emitBatch), what most Jaeger clients send.
    #[arg(
        long = "processor.jaeger-compact.server-host-port",
        env = "PROCESSOR_JAEGER_COMPACT_SERVER_HOST_PORT",
        default_value = ":6831"
    )]
    pub compact_host_port: String,

    /// UDP address for Jaeger Thrift binary (Agent.emitBatch), the Node.js client's default.
    #[arg(
        long = "processor.jaeger-binary.server-host-port",
        env = "PROCESSOR_JAEGER_BINARY_SERVER_HOST_PORT",
        default_value = ":6832"
    )]
    pub binary_host_port: String,

    /// UDP address for Zipkin Thrift compact (Agent.emitZipkinBatch).
    #[arg(
        long = "processor.zipkin-compact.server-host-port",
        env = "PROCESSOR_ZIPKIN_COMPACT_SERVER_HOST_PORT",
        default_value = ":5775"
    )]
    pub zipkin_udp_host_port: String,

    /// HTTP address where clients poll sampling strategies (/sampling, /, /baggageRestrictions).
    #[arg(
        long = "http-server.host-port",
        env = "HTTP_SERVER_HOST_PORT",
        default_value = ":5778"
    )]
    pub sampling_host_port: String,

    /// Largest datagram accepted, in bytes; larger ones are counted and dropped.
    #[arg(long = "agent.udp.max-packet-size", env = "AGENT_UDP_MAX_PACKET_SIZE", default_value_t = DEFAULT_MAX_PACKET_SIZE)]
    pub udp_max_packet_size: usize,

    /// Datagrams waiting for a decoder, per port; beyond it packets are counted and dropped.
    #[arg(
        long = "agent.udp.queue-size",
        env = "AGENT_UDP_QUEUE_SIZE",
        default_value_t = 1_000
    )]
    pub udp_queue_size: usize,

    /// Decoding workers per port.
    #[arg(
        long = "agent.udp.workers",
        env = "AGENT_UDP_WORKERS",
        default_value_t = 2
    )]
    pub udp_workers: usize,

    /// Kernel receive buffer of each UDP socket, in bytes (0: the OS default).
    #[arg(
        long = "agent.udp.socket-buffer-size",
        env = "AGENT_UDP_SOCKET_BUFFER_SIZE",
        default_value_t = 0
    )]
    pub udp_socket_buffer_size: usize,

    /// Collectors to forward to, comma-separated host:port; batches go round-robin.
    #[arg(
        long = "reporter.grpc.host-port",
        env = "REPORTER_GRPC_HOST_PORT",
        default_value = "127.0.0.1:14250",
        value_delimiter = ','
    )]
    pub collectors: Vec<String>,

    /// Time limit of one PostSpans call.
    #[arg(long = "reporter.grpc.timeout", env = "REPORTER_GRPC_TIMEOUT", default_value = "5s", value_parser = spoor_model::parse_go_duration)]
    pub reporter_timeout: Duration,

    /// Batches held for forwarding (including while collectors are down);
    /// beyond it new batches are counted and dropped.
    #[arg(
        long = "reporter.grpc.buffer-batches",
        env = "REPORTER_GRPC_BUFFER_BATCHES",
        default_value_t = 10_000
    )]
    pub reporter_buffer_batches: usize,

    /// Concurrent PostSpans calls.
    #[arg(
        long = "reporter.grpc.senders",
        env = "REPORTER_GRPC_SENDERS",
        default_value_t = 4
    )]
    pub reporter_senders: usize,

    /// Tags added to every process: key=value pairs, comma-separated; a value
    /// may be ${ENV_VAR} or ${ENV_VAR:default}.
    #[arg(long = "agent.tags", env = "AGENT_TAGS", default_value = "")]
    pub agent_tags: String,

    /// Connect to the collectors with TLS.
    #[arg(
        long = "reporter.grpc.tls.enabled",
        env = "REPORTER_GRPC_TLS_ENABLED",
        default_value_t = false
    )]
    pub tls_enabled: bool,
    /// CA certificates (PEM) the collectors' certificates are checked against (the system's when unset).
    #[arg(long = "reporter.grpc.tls.ca", env = "REPORTER_GRPC_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM), for collectors that ask for one (mutual TLS).
    #[arg(long = "reporter.grpc.tls.cert", env = "REPORTER_GRPC_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long = "reporter.grpc.tls.key", env = "REPORTER_GRPC_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The name the collectors' certificate must carry, when not the host dialled.
    #[arg(
        long = "reporter.grpc.tls.server-name",
        env = "REPORTER_GRPC_TLS_SERVER_NAME"
    )]
    pub tls_server_name: Option<String>,
    /// File holding the bearer token sent to the collectors (an ingest token).
    #[arg(long = "reporter.grpc.token-file", env = "REPORTER_GRPC_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
}

impl AgentOptions {
    /// The TLS settings of the connection to the collectors, checked.
    pub fn client_tls(&self) -> Result<spoor_tls::ClientTls, spoor_tls::TlsError> {
        spoor_tls::ClientTls {
            enabled: self.tls_enabled,
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
            skip_host_verify: false,
        }
        .checked("reporter.grpc.", false)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.collectors.iter().all(|c| c.trim().is_empty()),
            "reporter.grpc.host-port names no collector"
        );
        anyhow::ensure!(
            self.udp_queue_size > 0 && self.udp_workers > 0 && self.reporter_senders > 0,
            "queue sizes and worker counts must be positive"
        );
        anyhow::ensure!(
            self.udp_max_packet_size > 0,
            "agent.udp.max-packet-size must be positive"
        );
        Ok(())
    }
}
