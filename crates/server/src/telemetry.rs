//! Logging for the binaries: stderr, and the audit trail (target `audit`:
//! authentication refusals and what each identity read) to a file of JSON
//! lines when one is named.
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Logs to stderr at `level` (Jaeger's `--log-level`), unless RUST_LOG says
/// otherwise; with `audit_file`, the `audit` target's events go to it, one
/// JSON object a line, and not to stderr.
pub fn init_logging(level: &str, audit_file: Option<&Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry();
    let _ = match audit_file {
        None => registry.with(stderr.with_filter(filter)).try_init(),
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("while opening the audit log {}", path.display()))?;
            let audit = tracing_subscriber::fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .with_filter(Targets::new().with_target("audit", tracing::Level::INFO));
            let filter = filter.add_directive("audit=off".parse().expect("a valid directive"));
            registry
                .with(stderr.with_filter(filter))
                .with(audit)
                .try_init()
        }
    };
    Ok(())
}
