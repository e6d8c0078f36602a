//! Serving HTTP/1 and HTTP/2 (gRPC included), in clear or over TLS, on bound listeners with the
//! limits that keep one client, or one flooded port, from taking the process
//! down: a connection cap per listener (refusals counted), a deadline for
//! request headers, a deadline between request body frames, a cap on
//! concurrent HTTP/2 streams, one process-wide budget for the bytes of gRPC
//! messages that have not fully arrived, and a shutdown that closes whatever
//! is still open once its deadline has passed.
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use bytes::{Bytes, BytesMut};
use clap::Args;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use spoor_tls::Acceptor;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::auth::{Auth, AuthOptions, PeerAddr, Role};
use crate::shutdown::Shutdown;

/// Descriptors kept for everything that is not an accepted connection
/// (storage files and clients, outbound connections, the listeners).
const RESERVED_DESCRIPTORS: u64 = 256;

/// The limits of every HTTP and gRPC listener of a process.
#[derive(Args, Clone, Debug)]
pub struct ServeOptions {
    /// Open connections one listener accepts; more are closed at once and
    /// counted (spoor_server_connections_refused_total). A listener never
    /// takes more than a quarter of the process's file descriptors.
    #[arg(
        long = "server.max-connections",
        env = "SERVER_MAX_CONNECTIONS",
        default_value_t = 4096
    )]
    pub max_connections: usize,

    /// How long a client may take to send an HTTP/1 request's headers.
    #[arg(long = "server.read-header-timeout", env = "SERVER_READ_HEADER_TIMEOUT", value_parser = spoor_model::parse_go_duration, default_value = "10s")]
    pub read_header_timeout: Duration,

    /// How long a request body may stall between two pieces of data
    /// (HTTP and gRPC); a stalled request is failed and its memory freed.
    #[arg(long = "server.body-idle-timeout", env = "SERVER_BODY_IDLE_TIMEOUT", value_parser = spoor_model::parse_go_duration, default_value = "15s")]
    pub body_idle_timeout: Duration,

    /// Concurrent HTTP/2 streams (gRPC calls) per connection.
    #[arg(
        long = "server.max-concurrent-streams",
        env = "SERVER_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub max_concurrent_streams: u32,

    /// Bytes of gRPC messages that have not fully arrived, summed over every
    /// call of the process; a call that would exceed it fails with
    /// RESOURCE_EXHAUSTED instead of growing memory.
    #[arg(long = "server.grpc-buffer-bytes", env = "SERVER_GRPC_BUFFER_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub grpc_buffer_bytes: usize,

    /// How long shutdown waits for in-flight requests before it closes
    /// their connections, and then for queued spans to be written.
    #[arg(long = "shutdown.timeout", env = "SHUTDOWN_TIMEOUT", value_parser = spoor_model::parse_go_duration, default_value = "10s")]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub auth: AuthOptions,
}

impl Default for ServeOptions {
    /// The options' defaults as the command line declares them.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            options: ServeOptions,
        }
        <Defaults as clap::Parser>::try_parse_from(["spoor"])
            .expect("the defaults parse")
            .options
    }
}

/// A bound port, its TLS acceptor when it serves TLS, and the role whose
/// tokens it takes when authentication is on (none: open to all).
pub struct Listener {
    tcp: TcpListener,
    tls: Option<Arc<Acceptor>>,
    role: Option<Role>,
}

impl Listener {
    pub fn new(tcp: TcpListener, tls: Option<Arc<Acceptor>>) -> Listener {
        Listener {
            tcp,
            tls,
            role: None,
        }
    }

    /// Asks for tokens of `role` when authentication is on.
    pub fn role(self, role: Role) -> Listener {
        Listener {
            role: Some(role),
            ..self
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener::new(tcp, None)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    listener: String,
    reason: &'static str,
}

#[derive(Clone, Default)]
struct ServeMetrics {
    grpc_refused: Family<RefusalLabel, Counter>,
    open: Family<ListenerLabel, Gauge>,
    refused: Family<ListenerLabel, Counter>,
    accept_errors: Family<ListenerLabel, Counter>,
    closed_at_deadline: Family<ListenerLabel, Counter>,
    bodies_stalled: Family<ListenerLabel, Counter>,
    handshakes_failed: Family<ListenerLabel, Counter>,
    grpc_over_budget: Family<ListenerLabel, Counter>,
    grpc_buffered: Gauge,
}

impl ServeMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("spoor_server");
        r.register(
            "connections_open",
            "Open connections per listener",
            self.open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once because the listener had its maximum open",
            self.refused.clone(),
        );
        r.register(
            "accept_errors",
            "Failed accepts (out of file descriptors, among others)",
            self.accept_errors.clone(),
        );
        r.register(
            "connections_closed_at_deadline",
            "Connections still open when the shutdown deadline passed, closed",
            self.closed_at_deadline.clone(),
        );
        r.register(
            "request_bodies_stalled",
            "Requests failed because their body stalled longer than --server.body-idle-timeout",
            self.bodies_stalled.clone(),
        );
        r.register(
            "tls_handshakes_failed",
            "TLS handshakes that failed or did not finish within --server.read-header-timeout",
            self.handshakes_failed.clone(),
        );
        r.register(
            "grpc_buffer_refusals",
            "gRPC calls failed because the process-wide buffer for partial messages was full",
            self.grpc_over_budget.clone(),
        );
        r.register(
            "grpc_calls_refused",
            "gRPC calls refused before a handler saw them: reason=oversize (over the message size limit) or undecodable",
            self.grpc_refused.clone(),
        );
        r.register(
            "grpc_buffered_bytes",
            "Bytes of gRPC messages received but not yet complete",
            self.grpc_buffered.clone(),
        );
    }
}

/// Serves listeners with the process's limits; cheap to clone. Made once per
/// process by [`crate::lifecycle::run_with_admin`].
#[derive(Clone)]
pub struct Serving {
    inner: Arc<Inner>,
}

struct Inner {
    options: ServeOptions,
    shutdown: Shutdown,
    metrics: ServeMetrics,
    /// Connections one listener may hold: the option, within the descriptors.
    per_listener: usize,
    grpc_budget: Arc<Budget>,
    /// The process's background tasks, waited for at shutdown.
    tasks: TaskTracker,
    auth: Option<Arc<Auth>>,
}

impl Serving {
    pub fn new(
        options: ServeOptions,
        shutdown: Shutdown,
        registry: &mut Registry,
    ) -> Result<Serving, crate::auth::AuthError> {
        let auth = Auth::new(&options.auth, registry)?;
        let metrics = ServeMetrics::default();
        metrics.register(registry);
        let per_listener = options
            .max_connections
            .min(descriptor_share(raise_descriptor_limit()));
        let grpc_budget = Arc::new(Budget {
            limit: options.grpc_buffer_bytes,
            used: AtomicUsize::new(0),
            gauge: metrics.grpc_buffered.clone(),
        });
        Ok(Serving {
            inner: Arc::new(Inner {
                options,
                shutdown,
                metrics,
                per_listener,
                grpc_budget,
                tasks: TaskTracker::new(),
                auth,
            }),
        })
    }

    /// The process's shutdown signal.
    pub fn shutdown(&self) -> Shutdown {
        self.inner.shutdown.clone()
    }

    /// Runs a background task of the process (a periodic save, a server
    /// beside the services); shutdown waits for it, up to
    /// `--shutdown.timeout`, so a task that ends on the shutdown signal gets
    /// to finish what it does then.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.tasks.spawn(task);
    }

    /// Waits for the background tasks, up to the shutdown deadline; no task
    /// may be spawned after.
    pub(crate) async fn wait_for_tasks(&self) {
        let tasks = &self.inner.tasks;
        tasks.close();
        if tokio::time::timeout(self.inner.options.shutdown_timeout, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tasks.len(),
                "background tasks still running at the shutdown deadline"
            );
        }
    }

    pub fn options(&self) -> &ServeOptions {
        &self.inner.options
    }

    /// Serves an HTTP router on `listener` until shutdown.
    pub async fn http(
        &self,
        listener: impl Into<Listener>,
        app: Router,
        what: &str,
    ) -> anyhow::Result<()> {
        self.serve(listener.into(), app, what, false).await
    }

    /// Serves gRPC services on `listener` until shutdown.
    pub async fn grpc(
        &self,
        listener: impl Into<Listener>,
        routes: tonic::service::Routes,
        what: &str,
    ) -> anyhow::Result<()> {
        let refused = |reason| {
            let label = RefusalLabel {
                listener: what.to_string(),
                reason,
            };
            self.inner
                .metrics
                .grpc_refused
                .get_or_create(&label)
                .clone()
        };
        let refusals = Refusals {
            oversize: refused("oversize"),
            undecodable: refused("undecodable"),
        };
        let app = routes
            .into_axum_router()
            .layer(axum::middleware::map_response(move |response| {
                spec_status_codes(response, refusals.clone())
            }));
        self.serve(listener.into(), app, what, true).await
    }

    async fn serve(
        &self,
        Listener {
            tcp: listener,
            tls,
            role,
        }: Listener,
        app: Router,
        what: &str,
        grpc: bool,
    ) -> anyhow::Result<()> {
        let inner = &self.inner;
        let app = match (&inner.auth, role) {
            (Some(auth), Some(role)) => auth.protect(app, role),
            _ => app,
        };
        let label = ListenerLabel {
            listener: what.to_string(),
        };
        let open = inner.metrics.open.get_or_create(&label).clone();
        let refused = inner.metrics.refused.get_or_create(&label).clone();
        let accept_errors = inner.metrics.accept_errors.get_or_create(&label).clone();
        let handshakes_failed = inner
            .metrics
            .handshakes_failed
            .get_or_create(&label)
            .clone();
        let handshake_timeout = inner.options.read_header_timeout;
        let guard = Arc::new(BodyGuard {
            idle: inner.options.body_idle_timeout,
            stalled: inner.metrics.bodies_stalled.get_or_create(&label).clone(),
            grpc: grpc.then(|| GrpcGuard {
                budget: Arc::clone(&inner.grpc_budget),
                refused: inner.metrics.grpc_over_budget.get_or_create(&label).clone(),
            }),
        });
        let builder = self.connection_builder();
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(inner.per_listener));
        let mut connections = JoinSet::new();
        let stop = inner.shutdown.clone().wait();
        tokio::pin!(stop);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut stop => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_errors.inc();
                        tracing::warn!(listener = what, error = %e, "accept failed");
                        // out of descriptors, most likely: let connections close
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                refused.inc();
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let guard = Arc::clone(&guard);
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let mut request = request.map(|body| axum::body::Body::new(guard.wrap(body)));
                request.extensions_mut().insert(PeerAddr(peer));
                app.clone().oneshot(request)
            });
            let open = open.clone();
            open.inc();
            let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
            let handshakes_failed = handshakes_failed.clone();
            let what = what.to_string();
            connections.spawn(async move {
                match tls {
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection.into_owned()).await;
                    }
                    // the handshake runs in the connection's task, under the header deadline
                    Some(tls) => {
                        match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let connection =
                                    builder.serve_connection(TokioIo::new(stream), service);
                                let _ = watcher.watch(connection.into_owned()).await;
                            }
                            Ok(Err(e)) => {
                                handshakes_failed.inc();
                                tracing::debug!(listener = what, error = %e, "TLS handshake failed");
                            }
                            Err(_) => {
                                handshakes_failed.inc();
                                tracing::debug!(listener = what, "TLS handshake timed out");
                            }
                        }
                    }
                }
                open.dec();
                drop(slot);
            });
        }
        drop(listener);
        let deadline = inner.options.shutdown_timeout;
        let finished = async {
            graceful.shutdown().await;
            while connections.join_next().await.is_some() {}
        };
        if tokio::time::timeout(deadline, finished).await.is_err() {
            let left = connections.len();
            inner
                .metrics
                .closed_at_deadline
                .get_or_create(&label)
                .inc_by(left as u64);
            tracing::warn!(
                listener = what,
                connections = left,
                "closing connections still open at the shutdown deadline"
            );
            connections.shutdown().await;
        }
        Ok(())
    }

    fn connection_builder(&self) -> auto::Builder<TokioExecutor> {
        let options = &self.inner.options;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.read_header_timeout)
            .max_buf_size(64 * 1024);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(options.max_concurrent_streams)
            .max_header_list_size(64 * 1024)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        builder
    }
}

/// tonic refuses some calls before a handler sees them with codes that make
/// OTLP exporters misbehave: a message over the size limit is OUT_OF_RANGE,
/// which the OTLP specification lists as retryable (so the client resends
/// the same oversize batch until its timeout), and an undecodable one
/// INTERNAL. Both are requests that can never succeed, so both become
/// INVALID_ARGUMENT, which no client retries (RESOURCE_EXHAUSTED, grpc-go's
/// code for an oversize message, is retried by the OTel Python exporter).
/// Each rewrite is counted.
async fn spec_status_codes(
    mut response: axum::response::Response,
    refusals: Refusals,
) -> axum::response::Response {
    let headers = response.headers_mut();
    let message = headers
        .get("grpc-message")
        .map(|m| m.as_bytes())
        .unwrap_or_default();
    let refusal = match headers.get("grpc-status").map(|c| c.as_bytes()) {
        Some(b"11")
            if message.starts_with(b"Error,%20decoded%20message%20length%20too%20large") =>
        {
            &refusals.oversize
        }
        Some(b"13") if message.starts_with(b"failed%20to%20decode%20Protobuf%20message") => {
            &refusals.undecodable
        }
        _ => return response,
    };
    refusal.inc();
    headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    response
}

#[derive(Clone)]
struct Refusals {
    oversize: Counter,
    undecodable: Counter,
}

/// Raises the soft limit of open files to the hard limit, so that the limits
/// below are what bounds connections; returns the limit in force.
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Connections one listener may hold with `descriptors` open files: a
/// quarter of what is left after the reserve, so that a flood on one port
/// leaves the others their descriptors.
fn descriptor_share(descriptors: u64) -> usize {
    let share = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 4;
    usize::try_from(share.max(16)).unwrap_or(usize::MAX)
}

/// Bytes of partial gRPC messages held by the whole process.
struct Budget {
    limit: usize,
    used: AtomicUsize,
    gauge: Gauge,
}

impl Budget {
    fn try_take(&self, n: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + n <= self.limit).then_some(used + n)
            })
            .is_ok();
        if taken {
            self.gauge.inc_by(n as i64);
        }
        taken
    }

    fn give_back(&self, n: usize) {
        if n > 0 {
            self.used.fetch_sub(n, Ordering::AcqRel);
            self.gauge.dec_by(n as i64);
        }
    }
}

struct BodyGuard {
    idle: Duration,
    stalled: Counter,
    grpc: Option<GrpcGuard>,
}

struct GrpcGuard {
    budget: Arc<Budget>,
    refused: Counter,
}

impl BodyGuard {
    fn wrap(self: &Arc<Self>, inner: Incoming) -> GuardedBody {
        GuardedBody {
            inner,
            guard: Arc::clone(self),
            timer: Box::pin(tokio::time::sleep(self.idle)),
            pending: BytesMut::new(),
            charged: 0,
            passthrough: false,
            done: false,
            trailers: None,
        }
    }
}

/// A request body that fails when it stalls longer than the idle timeout
/// and, for gRPC, hands each message on only once it has fully arrived, so
/// the decoder never reserves room for a length a client merely announced;
/// the bytes held meanwhile are charged to the process's budget.
struct GuardedBody {
    inner: Incoming,
    guard: Arc<BodyGuard>,
    timer: Pin<Box<Sleep>>,
    /// gRPC: received bytes of messages not yet complete.
    pending: BytesMut,
    /// Bytes of `pending` charged to the budget.
    charged: usize,
    /// gRPC: a message over the budget's size is handed on as it comes (the
    /// decoder refuses it by its announced length).
    passthrough: bool,
    done: bool,
    /// Trailers that came while a partial message was still held.
    trailers: Option<Frame<Bytes>>,
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// The length-prefixed messages of a gRPC body: 1 flag byte, 4 length bytes.
const GRPC_HEADER: usize = 5;

impl GuardedBody {
    /// The first complete message in `pending`, if any.
    fn complete_message(&mut self) -> Option<Bytes> {
        if self.pending.len() < GRPC_HEADER {
            return None;
        }
        let len = u32::from_be_bytes(self.pending[1..GRPC_HEADER].try_into().ok()?) as usize;
        let budget = &self.guard.grpc.as_ref()?.budget;
        if len + GRPC_HEADER > budget.limit {
            // cannot ever be held: let the decoder refuse it by its length
            self.passthrough = true;
            return Some(self.take_pending(self.pending.len()));
        }
        (self.pending.len() >= GRPC_HEADER + len).then(|| self.take_pending(GRPC_HEADER + len))
    }

    fn take_pending(&mut self, n: usize) -> Bytes {
        let taken = self.pending.split_to(n).freeze();
        let released = n.min(self.charged);
        self.charged -= released;
        if let Some(grpc) = &self.guard.grpc {
            grpc.budget.give_back(released);
        }
        taken
    }

    fn stalled(&mut self) -> BoxError {
        self.guard.stalled.inc();
        let message = format!("request body stalled for more than {:?}", self.guard.idle);
        if self.guard.grpc.is_some() {
            Box::new(tonic::Status::cancelled(message))
        } else {
            Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
        }
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        if let Some(grpc) = &self.guard.grpc {
            grpc.budget.give_back(self.charged);
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.guard.grpc.is_some()
                && !this.passthrough
                && let Some(message) = this.complete_message()
            {
                return Poll::Ready(Some(Ok(Frame::data(message))));
            }
            if this.done {
                // an incomplete message at the end: the decoder reports it
                if !this.pending.is_empty() {
                    let rest = this.take_pending(this.pending.len());
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                return Poll::Ready(this.trailers.take().map(Ok));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    ready!(this.timer.as_mut().poll(cx));
                    return Poll::Ready(Some(Err(this.stalled())));
                }
                Poll::Ready(frame) => {
                    let deadline = Instant::now() + this.guard.idle;
                    this.timer.as_mut().reset(deadline);
                    match frame {
                        None => this.done = true,
                        Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                        Some(Ok(frame)) => {
                            let Some(grpc) = this.guard.grpc.as_ref().filter(|_| !this.passthrough)
                            else {
                                return Poll::Ready(Some(Ok(frame)));
                            };
                            let data = match frame.into_data() {
                                Ok(data) => data,
                                Err(trailers) => {
                                    // after what is held, which the loop hands on first
                                    this.done = true;
                                    this.trailers = Some(trailers);
                                    continue;
                                }
                            };
                            if !grpc.budget.try_take(data.len()) {
                                grpc.refused.inc();
                                this.done = true;
                                return Poll::Ready(Some(Err(Box::new(
                                    tonic::Status::resource_exhausted(
                                        "the server is holding too many partial gRPC messages; retry later",
                                    ),
                                ))));
                            }
                            this.charged += data.len();
                            this.pending.extend_from_slice(&data);
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.guard.grpc.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_takes_at_most_a_quarter_of_the_descriptors() {
        assert_eq!(descriptor_share(1024), 192);
        assert_eq!(descriptor_share(100), 16);
        assert_eq!(descriptor_share(1_048_576), 262_080);
    }

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Budget {
            limit: 10,
            used: AtomicUsize::new(0),
            gauge: Gauge::default(),
        };
        assert!(budget.try_take(6));
        assert!(!budget.try_take(5));
        budget.give_back(6);
        assert!(budget.try_take(10));
        assert_eq!(budget.gauge.get(), 10);
    }
}
