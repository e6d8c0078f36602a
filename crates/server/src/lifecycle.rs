//! The life of a Spoor process: serve the admin port, mark healthy, run the
//! services until ctrl-c or SIGTERM, then mark unhealthy, stop them and wait
//! for the background tasks they spawned on [`Serving`].
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::admin::{self, Health};
use crate::serve::{ServeOptions, Serving};
use crate::shutdown::{ShutdownTrigger, os_signal};

spoor_tls::server_tls_options!(AdminHttpTls, "admin.http", "ADMIN_HTTP");

/// Where the admin port listens, and its TLS.
pub struct AdminPort {
    pub addr: SocketAddr,
    pub tls: Option<Arc<spoor_tls::Acceptor>>,
}

/// Runs `services` (given the process's [`Serving`], which carries the
/// shutdown signal) with the admin port on `admin`. Returns when the
/// services have stopped, after a signal or on their own failure.
pub async fn run_with_admin<F, Fut>(
    admin: AdminPort,
    serve_options: ServeOptions,
    mut registry: Registry,
    services: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Serving) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let listener = crate::net::bind(admin.addr, "admin").await?;
    tracing::info!(addr = %listener.local_addr()?, "admin port serving health and metrics");
    let health = Health::default();
    let (trigger, shutdown) = ShutdownTrigger::new();
    let trigger = Arc::new(trigger);
    let serving = Serving::new(serve_options, shutdown, &mut registry)?;
    let app = admin::router(health.clone(), Arc::new(registry));
    {
        let server = serving.clone();
        serving.spawn(async move {
            let listener =
                crate::serve::Listener::new(listener, admin.tls).role(crate::auth::Role::Admin);
            if let Err(e) = server.http(listener, app, "admin").await {
                tracing::warn!(error = %e, "admin port stopped with an error");
            }
        });
    }
    let on_signal = {
        let (health, trigger) = (health.clone(), Arc::clone(&trigger));
        tokio::spawn(async move {
            os_signal().await;
            tracing::info!("shutting down: intake stops, queued spans are written");
            health.set_ready(false);
            trigger.trigger();
        })
    };
    health.set_ready(true);
    let result = services(serving.clone()).await;
    health.set_ready(false);
    trigger.trigger();
    on_signal.abort();
    serving.wait_for_tasks().await;
    result
}
