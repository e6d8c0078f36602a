//! The running operator: leader election on a `coordination.k8s.io` Lease,
//! one controller per watched namespace (or one cluster-wide) reconciling
//! `Spoor` resources when they or their Deployments change and every five
//! minutes, the sidecar-injection webhook over TLS, and an admin port with
//! health and Prometheus metrics.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value as Json, json};

use crate::crd::Spoor;
use crate::reconcile::{ReconcileError, reconcile};
use crate::webhook;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Namespaces to watch; empty for the whole cluster.
    pub watch_namespaces: Vec<String>,
    pub admin_addr: SocketAddr,
    pub webhook_addr: SocketAddr,
    /// PEM certificate and key of the webhook server (it is off without them).
    pub webhook_tls: Option<(PathBuf, PathBuf)>,
    /// Where the leader Lease lives, and who this replica is.
    pub lease_namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
}

#[derive(Default)]
struct Metrics {
    reconciles: prometheus_client::metrics::counter::Counter,
    failures: prometheus_client::metrics::counter::Counter,
    admissions: prometheus_client::metrics::counter::Counter,
    leader: prometheus_client::metrics::gauge::Gauge,
}

pub async fn run(client: Client, o: RunOptions) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register(
        "spoor_operator_reconciles",
        "Reconciles run",
        metrics.reconciles.clone(),
    );
    registry.register(
        "spoor_operator_reconcile_failures",
        "Reconciles that failed",
        metrics.failures.clone(),
    );
    registry.register(
        "spoor_operator_admissions",
        "Admission reviews answered",
        metrics.admissions.clone(),
    );
    registry.register(
        "spoor_operator_leader",
        "1 while this replica leads",
        metrics.leader.clone(),
    );
    tokio::spawn(admin(o.admin_addr, Arc::new(registry)));
    if let Some((cert, key)) = &o.webhook_tls {
        let acceptor = tls_acceptor(cert, key)?;
        tokio::spawn(webhook_server(
            client.clone(),
            o.webhook_addr,
            acceptor,
            Arc::clone(&metrics),
        ));
    }

    let leases = lease_api(&client, &o.lease_namespace);
    while !try_lead(&leases, &o.identity, o.lease_duration).await? {
        tokio::time::sleep(o.lease_duration / 3).await;
    }
    metrics.leader.set(1);
    tracing::info!(identity = %o.identity, "leading; reconciling Spoor resources");
    let apis: Vec<(Api<Spoor>, Api<Deployment>)> = if o.watch_namespaces.is_empty() {
        vec![(Api::all(client.clone()), Api::all(client.clone()))]
    } else {
        o.watch_namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                )
            })
            .collect()
    };
    let context = Arc::new((client.clone(), Arc::clone(&metrics)));
    let controllers = apis.into_iter().map(|(spoors, deployments)| {
        Controller::new(spoors, watcher::Config::default())
            .owns(deployments, watcher::Config::default())
            .run(reconcile_one, on_error, Arc::clone(&context))
            .for_each(|_| async {})
    });
    let renew = async {
        loop {
            tokio::time::sleep(o.lease_duration / 3).await;
            match try_lead(&leases, &o.identity, o.lease_duration).await {
                Ok(true) => {}
                Ok(false) => return anyhow::anyhow!("another replica took the lease"),
                Err(e) => return e,
            }
        }
    };
    tokio::select! {
        _ = futures::future::join_all(controllers) => Ok(()),
        lost = renew => {
            metrics.leader.set(0);
            // exit: the Deployment restarts this replica as a follower
            Err(lost.context("leadership lost"))
        }
        _ = terminated() => Ok(()),
    }
}

async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

type Context = (Client, Arc<Metrics>);

async fn reconcile_one(spoor: Arc<Spoor>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.1.reconciles.inc();
    let outcome = reconcile(&ctx.0, &spoor).await?;
    tracing::info!(name = %spoor.name_any(), applied = outcome.applied.len(), deleted = outcome.deleted.len(), "reconciled");
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn on_error(spoor: Arc<Spoor>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.1.failures.inc();
    tracing::warn!(name = %spoor.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

fn lease_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"),
        "leases",
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

const LEASE: &str = "spoor-operator";

fn micro_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Whether a lease held by `holder`, renewed at `renewed` for `seconds`,
/// may be taken by `identity` at `now`.
pub fn may_take(lease: &Json, identity: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    let spec = &lease["spec"];
    if spec["holderIdentity"]
        .as_str()
        .is_none_or(|h| h.is_empty() || h == identity)
    {
        return true;
    }
    let renewed = spec["renewTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let seconds = spec["leaseDurationSeconds"].as_i64().unwrap_or(15);
    renewed.is_none_or(|r| r.with_timezone(&chrono::Utc) + chrono::Duration::seconds(seconds) < now)
}

/// Takes or renews the lease; false while another replica holds it. The
/// write carries the read's resourceVersion, so two replicas cannot both win.
async fn try_lead(
    api: &Api<DynamicObject>,
    identity: &str,
    duration: Duration,
) -> anyhow::Result<bool> {
    let now = chrono::Utc::now();
    let spec = json!({
        "holderIdentity": identity,
        "leaseDurationSeconds": duration.as_secs(),
        "renewTime": micro_time(now),
    });
    match api.get_opt(LEASE).await? {
        None => {
            let lease: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": LEASE}, "spec": spec,
            }))?;
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Some(mut lease) => {
            let current = serde_json::to_value(&lease)?;
            if !may_take(&current, identity, now) {
                return Ok(false);
            }
            lease.data["spec"] = spec;
            match api.replace(LEASE, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn admin(addr: SocketAddr, registry: Arc<prometheus_client::registry::Registry>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move {
                    let mut text = String::new();
                    prometheus_client::encoding::text::encode(&mut text, &registry)
                        .map(|_| text)
                        .unwrap_or_default()
                }
            }),
        );
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let _ = axum::serve(listener, app).await;
        }
        Err(e) => tracing::error!(%addr, error = %e, "admin port"),
    }
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<openssl::ssl::SslAcceptor> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder.set_certificate_chain_file(cert)?;
    builder.set_private_key_file(key, SslFiletype::PEM)?;
    builder.check_private_key()?;
    Ok(builder.build())
}

/// POST /mutate: AdmissionReviews for Deployments.
async fn webhook_server(
    client: Client,
    addr: SocketAddr,
    acceptor: openssl::ssl::SslAcceptor,
    metrics: Arc<Metrics>,
) {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/mutate",
        post(move |axum::Json(review): axum::Json<Json>| {
            let (client, metrics) = (client.clone(), Arc::clone(&metrics));
            async move {
                metrics.admissions.inc();
                axum::Json(answer(&client, &review).await)
            }
        }),
    );
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "webhook port");
            return;
        }
    };
    let acceptor = Arc::new(acceptor);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app) = (Arc::clone(&acceptor), app.clone());
        tokio::spawn(async move {
            let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                return;
            };
            let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
                return;
            };
            if std::pin::Pin::new(&mut stream).accept().await.is_err() {
                return;
            }
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

/// Looks up the instances and the namespace's annotations, then answers.
async fn answer(client: &Client, review: &Json) -> Json {
    let namespace = review["request"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    // every instance when the operator may list them cluster-wide, else
    // those of the Deployment's namespace (namespace-scoped installs)
    let params = ListParams::default();
    let instances: Vec<Spoor> = match Api::<Spoor>::all(client.clone()).list(&params).await {
        Ok(list) => list.items,
        Err(_) => match Api::<Spoor>::namespaced(client.clone(), &namespace)
            .list(&params)
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!(error = %e, "listing Spoor instances for an admission");
                Vec::new()
            }
        },
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let annotations = match namespaces.get_opt(&namespace).await {
        Ok(Some(ns)) => json!(ns.metadata.annotations.unwrap_or_default()),
        _ => json!({}),
    };
    webhook::review(review, &annotations, &instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, seconds: i64) -> Json {
        json!({"spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": seconds}})
    }

    #[test]
    fn a_lease_is_taken_when_free_expired_or_ours() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(may_take(&json!({"spec": {}}), "a", now));
        assert!(
            may_take(&lease("a", "2026-11-24T09:59:59.000000Z", 15), "a", now),
            "renewing our own"
        );
        assert!(
            !may_take(&lease("b", "2026-11-24T09:59:50.000000Z", 15), "a", now),
            "b still holds it"
        );
        assert!(
            may_take(&lease("b", "2026-11-24T09:59:40.000000Z", 15), "a", now),
            "b let it expire"
        );
    }
}
