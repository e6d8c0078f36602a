//! Serving an axum router on a bound listener until shutdown.
use anyhow::Context;

use crate::shutdown::Shutdown;

/// Serves `app` on `listener` until `shutdown`; in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: Shutdown,
    what: &str,
) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .with_context(|| format!("while serving {what}"))
}
