//! Logging for the binaries.
use tracing_subscriber::EnvFilter;

/// Logs to stderr at `level` (Jaeger's `--log-level`), unless RUST_LOG says otherwise.
pub fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
