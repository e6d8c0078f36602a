//! Forwarding batches to a [`SpanSink`]: a bounded buffer that holds
//! batches while collectors are unreachable, so a collector restart loses
//! nothing that fits in it, and retries with backoff. gRPC channels (a time
//! limit per call) reconnect on their own: tonic connects lazily and redials
//! after failures.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use spoor_server::shutdown::Shutdown;
use tokio::task::JoinSet;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::options::AgentOptions;

use crate::metrics::AgentMetrics;
use crate::sink::{ModelBatch, SendError, SpanSink};

type Batch = ModelBatch;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Queued batches taken together for one round of calls.
const MAX_BATCHES_PER_CALL: usize = 256;
/// Spans in one PostSpans call at most.
const MAX_SPANS_PER_CALL: usize = 2_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Hands batches to the sender tasks.
#[derive(Clone)]
pub struct Reporter {
    tx: async_channel::Sender<Batch>,
    metrics: Arc<AgentMetrics>,
}

impl Reporter {
    /// Queues a batch for forwarding; a full buffer drops it, counted.
    pub fn submit(&self, batch: Batch) {
        if self.tx.try_send(batch).is_ok() {
            self.metrics.buffered_batches.inc();
        } else {
            self.metrics.batches_dropped.inc();
        }
    }
}

struct Senders {
    sink: Arc<dyn SpanSink>,
    metrics: Arc<AgentMetrics>,
}

impl Senders {
    /// Delivers `batch`, going once through the sink's destinations and
    /// backing off after each full round, until it is delivered, refused as
    /// invalid, or shutdown comes while it still cannot be delivered.
    async fn deliver(&self, batch: Batch, shutdown: &Shutdown) {
        let spans = batch.spans.len() as u64;
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = None;
        loop {
            for _ in 0..self.sink.destinations() {
                match self.sink.send(&batch).await {
                    Ok(()) => {
                        self.metrics.batches_forwarded.inc();
                        self.metrics.spans_forwarded.inc_by(spans);
                        return;
                    }
                    Err(SendError::Refused(message)) => {
                        // the collector kept the valid spans; resending cannot help
                        tracing::warn!(message, "collector refused spans");
                        return;
                    }
                    Err(SendError::Failed {
                        message,
                        unreachable,
                    }) => {
                        self.metrics.forward_failures.inc();
                        tracing::debug!(message, "forwarding failed");
                        last_error = Some((message, unreachable));
                    }
                }
            }
            if shutdown.is_triggered() {
                match last_error.as_ref().filter(|(_, unreachable)| !unreachable) {
                    Some((refusal, _)) => tracing::warn!(
                        spans,
                        message = refusal,
                        "collector refused the batch until shutdown; batch dropped"
                    ),
                    None => {
                        tracing::warn!(spans, "collectors unreachable at shutdown; batch dropped")
                    }
                }
                self.metrics.batches_dropped.inc();
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Merges batches of the same process (a client sends one per datagram)
/// into calls of at most MAX_SPANS_PER_CALL spans, keeping their order.
fn coalesce(batches: Vec<Batch>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for batch in batches {
        match out.iter_mut().find(|b| {
            (Arc::ptr_eq(&b.process, &batch.process) || b.process == batch.process)
                && b.spans.len() + batch.spans.len() <= MAX_SPANS_PER_CALL
        }) {
            Some(b) => {
                let process = Arc::clone(&b.process);
                b.spans.extend(batch.spans.into_iter().map(|mut s| {
                    s.process = Arc::clone(&process);
                    s
                }));
            }
            None => out.push(batch),
        }
    }
    out
}

pub struct ReporterTasks {
    tasks: JoinSet<()>,
}

impl ReporterTasks {
    /// Waits for the senders to empty the buffer (they stop retrying once
    /// shutdown is triggered), at most `timeout`.
    pub async fn drain(mut self, timeout: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("forwarding buffer not drained before the deadline");
        }
    }
}

/// Lazily connected channels to the collectors, shared by forwarding and the
/// sampling proxy.
/// A channel to a collector, each call carrying the agent's token.
pub type CollectorChannel = InterceptedService<Channel, Credentials>;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub struct Credentials(Option<MetadataValue<Ascii>>);

impl Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

fn credentials(options: &AgentOptions) -> anyhow::Result<Credentials> {
    let Some(path) = &options.token_file else {
        return Ok(Credentials(None));
    };
    let token = std::fs::read_to_string(path).with_context(|| {
        format!(
            "while reading --reporter.grpc.token-file {}",
            path.display()
        )
    })?;
    let mut value: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| anyhow::anyhow!("{}: the token is not printable ASCII", path.display()))?;
    value.set_sensitive(true);
    Ok(Credentials(Some(value)))
}

fn tls_config(tls: &spoor_tls::ClientTls) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new();
    config = match tls.ca_pem()? {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_native_roots(),
    };
    if let Some(id) = tls.identity()? {
        config = config.identity(Identity::from_pem(id.cert, id.key));
    }
    if let Some(name) = &tls.server_name {
        config = config.domain_name(name.clone());
    }
    Ok(config)
}

/// One lazily connecting channel per collector of `--reporter.grpc.host-port`,
/// with TLS and the token as configured.
pub fn channels(options: &AgentOptions) -> anyhow::Result<Vec<CollectorChannel>> {
    let tls = options.client_tls()?;
    let tls = tls.enabled.then(|| tls_config(&tls)).transpose()?;
    let credentials = credentials(options)?;
    let timeout = options.reporter_timeout;
    options
        .collectors
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let url = if c.contains("://") {
                c.to_string()
            } else {
                format!("{scheme}://{c}")
            };
            let mut endpoint = Endpoint::from_shared(url)
                .with_context(|| format!("while parsing collector address {c:?}"))?
                .connect_timeout(timeout)
                .timeout(timeout);
            if let Some(tls) = &tls {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .context("while setting up TLS to the collectors")?;
            }
            Ok(InterceptedService::new(
                endpoint.connect_lazy(),
                credentials.clone(),
            ))
        })
        .collect()
}

pub fn start(
    sink: Arc<dyn SpanSink>,
    buffer_batches: usize,
    senders: usize,
    metrics: Arc<AgentMetrics>,
    shutdown: Shutdown,
) -> anyhow::Result<(Reporter, ReporterTasks)> {
    let (tx, rx) = async_channel::bounded::<Batch>(buffer_batches);
    let state = Arc::new(Senders {
        sink,
        metrics: Arc::clone(&metrics),
    });
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let (rx, state, shutdown) = (rx.clone(), Arc::clone(&state), shutdown.clone());
        tasks.spawn(async move {
            loop {
                let Ok(first) = rx.recv().await else { return };
                // what else is waiting rides along in the same call
                let mut batches = vec![first];
                while batches.len() < MAX_BATCHES_PER_CALL {
                    match rx.try_recv() {
                        Ok(b) => batches.push(b),
                        Err(_) => break,
                    }
                }
                state.metrics.buffered_batches.dec_by(batches.len() as i64);
                for batch in coalesce(batches) {
                    state.deliver(batch, &shutdown).await;
                }
            }
        });
    }
    Ok((Reporter { tx, metrics }, ReporterTasks { tasks }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_model::{Process, Span, SpanId, TraceId};

    fn batch(service: &str, spans: usize) -> Batch {
        let process = Arc::new(Process {
            service_name: service.into(),
            tags: vec![],
        });
        Batch {
            spans: (0..spans)
                .map(|i| Span {
                    trace_id: TraceId(1),
                    span_id: SpanId(i as u64 + 1),
                    operation_name: format!("{service}-{i}"),
                    references: vec![],
                    flags: 1,
                    start_time: std::time::UNIX_EPOCH,
                    duration: Duration::ZERO,
                    tags: vec![],
                    logs: vec![],
                    process: Arc::clone(&process),
                    warnings: vec![],
                })
                .collect(),
            process,
        }
    }

    #[test]
    fn batches_of_one_process_merge_up_to_the_call_limit() {
        let merged = coalesce(vec![
            batch("a", 10),
            batch("b", 5),
            batch("a", 10),
            batch("a", MAX_SPANS_PER_CALL),
        ]);
        let shape: Vec<(&str, usize)> = merged
            .iter()
            .map(|b| (b.process.service_name.as_str(), b.spans.len()))
            .collect();
        assert_eq!(shape, vec![("a", 20), ("b", 5), ("a", MAX_SPANS_PER_CALL)]);
        assert_eq!(merged[0].spans[10].operation_name, "a-0", "order kept");
    }
}
