//! The query service: Jaeger's HTTP JSON API and api_v3 on 16686, the
//! api_v2 and api_v3 gRPC QueryServices on 16685, all reading from any
//! storage backend.

mod api_v3;
mod grpc;
mod http;
mod metrics;
mod prometheus;
mod read;
pub mod search;
mod ui;
pub mod uimodel;

pub use http::ApiState;
pub use metrics::QueryMetrics;

use std::sync::Arc;

use anyhow::Context;

use clap::Args;
use prometheus_client::registry::Registry;
use spoor_proto::api_v2::query_service_server::QueryServiceServer;
use spoor_server::auth::Role;
use spoor_server::net::{bind, parse_host_port};
use spoor_server::serve::{Listener, Serving};
use spoor_storage::{Archive, DependencyReader, SpanReader, WithArchive};
use tonic::service::Routes;

spoor_tls::server_tls_options!(HttpTls, "query.http", "QUERY_HTTP");
spoor_tls::server_tls_options!(GrpcTls, "query.grpc", "QUERY_GRPC");

#[derive(Args, Clone, Debug)]
pub struct QueryOptions {
    #[command(flatten)]
    pub http_tls: HttpTls,
    #[command(flatten)]
    pub grpc_tls: GrpcTls,

    /// HTTP API (and later UI) listen address.
    #[arg(
        long = "query.http-server.host-port",
        env = "QUERY_HTTP_SERVER_HOST_PORT",
        default_value = ":16686"
    )]
    pub query_http_host_port: String,

    /// gRPC QueryService listen address.
    #[arg(
        long = "query.grpc-server.host-port",
        env = "QUERY_GRPC_SERVER_HOST_PORT",
        default_value = ":16685"
    )]
    pub query_grpc_host_port: String,

    /// Path prefix of every HTTP route, for serving behind a reverse proxy (e.g. /jaeger).
    #[arg(long = "query.base-path", env = "QUERY_BASE_PATH", default_value = "/")]
    pub base_path: String,

    /// Spans one `/api/traces` answer holds at most: traces past it are left
    /// out, and the answer's `errors` says how many (the first trace is
    /// always whole).
    #[arg(
        long = "query.max-response-spans",
        env = "QUERY_MAX_RESPONSE_SPANS",
        default_value_t = 200_000
    )]
    pub max_response_spans: usize,

    /// Bytes of JSON one `/api/traces` answer holds at most, as the spans
    /// bound. Answers are streamed trace by trace, never built whole.
    #[arg(long = "query.max-response-bytes", env = "QUERY_MAX_RESPONSE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// A JSON file of UI settings in the Jaeger UI's format; Spoor's UI reads
    /// its `linkPatterns` (links from spans and traces to other tools, with
    /// `#{key}` filled from a tag, `#{traceID}` and `#{spanID}`), served at
    /// `/api/ui-config`.
    #[arg(long = "query.ui-config", env = "QUERY_UI_CONFIG")]
    pub ui_config: Option<std::path::PathBuf>,

    /// Where `/api/metrics/*` reads RED metrics: empty for the collector in
    /// this process (none in a query of its own: 501), `prometheus` for a
    /// Prometheus scraping the collectors (--prometheus.*).
    #[arg(long = "metrics-storage.type", env = "METRICS_STORAGE_TYPE", default_value = "", value_parser = ["", "prometheus"])]
    pub metrics_storage: String,

    #[command(flatten)]
    pub prometheus: prometheus::PrometheusOptions,

    /// Serve the UI build in this directory instead of Spoor's own: the
    /// Jaeger UI (`npm run build` of jaegertracing/jaeger-ui), its page told
    /// the settings of --query.ui-config and what the stores offer, as
    /// Jaeger's query tells it.
    #[arg(long = "query.static-files", env = "QUERY_STATIC_FILES")]
    pub static_files: Option<std::path::PathBuf>,
}

impl QueryOptions {
    /// The UI settings file, read once at start: a JSON object of at most 1 MiB.
    fn ui_config(&self) -> anyhow::Result<serde_json::Value> {
        let Some(path) = &self.ui_config else {
            return Ok(serde_json::json!({}));
        };
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("while reading {}: {e}", path.display()))?;
        anyhow::ensure!(
            bytes.len() <= 1 << 20,
            "{} is over 1 MiB: not a UI settings file",
            path.display()
        );
        let config: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        anyhow::ensure!(
            config.is_object(),
            "{} is not a JSON object",
            path.display()
        );
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.base_path.starts_with('/'),
            "query.base-path must start with '/'"
        );
        Ok(())
    }
}

pub struct QueryServer {
    options: QueryOptions,
    state: ApiState,
    ui: Arc<ui::Ui>,
    http: Listener,
    grpc: Listener,
    addrs: Vec<std::net::SocketAddr>,
}

/// The HTTP API and the web UI under `base_path`.
pub fn app(state: ApiState, base_path: &str, ui: Arc<ui::Ui>) -> axum::Router {
    let csp = ui.csp();
    let api = http::router(state).fallback(move |uri, headers| ui::serve(ui, uri, headers));
    let app = match base_path.trim_end_matches('/') {
        "" => api,
        prefix => axum::Router::new()
            .nest(prefix, api)
            .fallback(http::not_found),
    };
    app.layer(axum::middleware::map_response(move |r| {
        ui::security_headers(csp.clone(), r)
    }))
}

impl QueryServer {
    /// Binds the query ports over the stores it reads: spans, the
    /// dependency graph, the archive (when there is one: traces are
    /// archived into it, and a trace the primary store lost is read from it)
    /// and the RED metrics of a collector in the same process.
    pub async fn bind(
        options: QueryOptions,
        reader: Arc<dyn SpanReader>,
        dependencies: Arc<dyn DependencyReader>,
        archive: Option<Archive>,
        red: Option<Arc<spoor_red::Red>>,
        registry: &mut Registry,
    ) -> anyhow::Result<Self> {
        options.validate()?;
        let reader: Arc<dyn SpanReader> = match &archive {
            Some(a) => Arc::new(WithArchive {
                primary: reader,
                archive: Arc::clone(&a.reader),
            }),
            None => reader,
        };
        let red = if options.metrics_storage == "prometheus" {
            let reader = prometheus::PrometheusReader::new(&options.prometheus)
                .context("while setting up --metrics-storage.type=prometheus")?;
            Some(http::RedSource::Prometheus(Arc::new(reader)))
        } else {
            red.map(http::RedSource::Local)
        };
        let state = ApiState {
            ui_config: Arc::new(options.ui_config()?),
            reader,
            dependencies,
            archive,
            red,
            metrics: Arc::new(QueryMetrics::new(registry)),
            limits: http::ResponseLimits {
                spans: options.max_response_spans,
                bytes: options.max_response_bytes,
            },
        };
        let ui = Arc::new(match &options.static_files {
            None => ui::Ui::new(&options.base_path),
            Some(dir) => {
                let page = ui::JaegerPage {
                    config: &state.ui_config,
                    archive: state.archive.is_some(),
                    metrics: state.red.is_some(),
                };
                ui::Ui::from_dir(dir, &options.base_path, &page)
                    .context("while reading --query.static-files")?
            }
        });
        let (http_tls, grpc_tls) = (options.http_tls.acceptor()?, options.grpc_tls.acceptor()?);
        let http = bind(
            parse_host_port(&options.query_http_host_port).map_err(anyhow::Error::from)?,
            "query HTTP",
        )
        .await?;
        let grpc = bind(
            parse_host_port(&options.query_grpc_host_port).map_err(anyhow::Error::from)?,
            "query gRPC",
        )
        .await?;
        let addrs = vec![http.local_addr()?, grpc.local_addr()?];
        Ok(QueryServer {
            options,
            state,
            ui,
            http: Listener::new(http, http_tls).role(Role::Read),
            grpc: Listener::new(grpc, grpc_tls).role(Role::Read),
            addrs,
        })
    }

    /// HTTP, then gRPC.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.addrs.clone()
    }

    pub async fn run(self, serving: Serving) -> anyhow::Result<()> {
        let QueryServer {
            options,
            state,
            ui,
            http,
            grpc,
            addrs: _,
        } = self;
        let grpc_service = QueryServiceServer::new(grpc::GrpcQuery {
            reader: Arc::clone(&state.reader),
            dependencies: Arc::clone(&state.dependencies),
            archive: state.archive.clone(),
        });
        let v3_service = spoor_proto::api_v3::query_service_server::QueryServiceServer::new(
            api_v3::GrpcQueryV3 {
                reader: Arc::clone(&state.reader),
                dependencies: Arc::clone(&state.dependencies),
            },
        );
        let app = app(state, &options.base_path, ui);
        let http_task = serving.http(http, app, "query HTTP");
        let routes = Routes::new(grpc_service).add_service(v3_service);
        let grpc_task = serving.grpc(grpc, routes, "query gRPC");
        tokio::try_join!(http_task, grpc_task)?;
        Ok(())
    }
}
