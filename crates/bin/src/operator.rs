//! `spoor-operator`: the Kubernetes operator's command line. `crd` prints
//! the CustomResourceDefinition; `render` prints the objects a `Spoor`
//! resource stands for, for review or for `kubectl apply -f -`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "spoor-operator",
    version,
    about = "Turns Spoor custom resources into the Kubernetes objects of an instance"
)]
pub struct OperatorCli {
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Run the operator: reconcile Spoor resources, inject agent sidecars.
    Run(RunArgs),
    /// Print the Spoor CustomResourceDefinition (YAML).
    Crd,
    /// Print the objects a Spoor resource renders to (YAML stream).
    Render {
        /// The resource, YAML or JSON ("-" for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Comma-separated namespaces to watch; empty for the whole cluster.
    #[arg(
        long = "watch-namespace",
        env = "WATCH_NAMESPACE",
        default_value = "",
        value_delimiter = ','
    )]
    pub watch_namespace: Vec<String>,
    /// Health on / and /healthz, Prometheus metrics on /metrics.
    #[arg(
        long = "admin.http.host-port",
        env = "ADMIN_HTTP_HOST_PORT",
        default_value = "0.0.0.0:8383"
    )]
    pub admin: std::net::SocketAddr,
    /// The sidecar-injection webhook (HTTPS).
    #[arg(
        long = "webhook.host-port",
        env = "WEBHOOK_HOST_PORT",
        default_value = "0.0.0.0:9443"
    )]
    pub webhook: std::net::SocketAddr,
    /// PEM certificate of the webhook server; without it the webhook is off.
    #[arg(long = "webhook.tls-cert", env = "WEBHOOK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of the webhook server.
    #[arg(long = "webhook.tls-key", env = "WEBHOOK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(
        long = "lease-namespace",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    pub lease_namespace: String,
    /// This replica's name in the Lease.
    #[arg(long = "identity", env = "POD_NAME", default_value = "spoor-operator")]
    pub identity: String,
    /// How long a leader's Lease lasts without renewal.
    #[arg(long = "lease-duration", default_value = "15s", value_parser = spoor_model::parse_go_duration)]
    pub lease_duration: std::time::Duration,
}

impl crate::Tool for OperatorCli {
    async fn run(self) -> anyhow::Result<()> {
        match self.command {
            OperatorCommand::Run(a) => {
                let client = kube::Client::try_default().await?;
                let options = spoor_operator::run::RunOptions {
                    watch_namespaces: a
                        .watch_namespace
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect(),
                    admin_addr: a.admin,
                    webhook_addr: a.webhook,
                    webhook_tls: a.tls_cert.zip(a.tls_key),
                    lease_namespace: a.lease_namespace,
                    identity: a.identity,
                    lease_duration: a.lease_duration,
                };
                spoor_operator::run::run(client, options).await?;
            }
            OperatorCommand::Crd => print!("{}", spoor_operator::crd_yaml()),
            OperatorCommand::Render { file } => {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&file)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                };
                let spoor = spoor_operator::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                let objects = spoor_operator::render::render(&spoor)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                print!("{}", spoor_operator::render::to_yaml(&objects));
            }
        }
        Ok(())
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        ("info", None)
    }
}
