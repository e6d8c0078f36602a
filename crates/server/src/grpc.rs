//! Serving gRPC services on a bound listener until shutdown.
use anyhow::Context;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;

use crate::shutdown::Shutdown;

/// Serves `routes` on `listener` until `shutdown`; in-flight calls finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    shutdown: Shutdown,
    what: &str,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.wait())
        .await
        .with_context(|| format!("while serving {what}"))
}
