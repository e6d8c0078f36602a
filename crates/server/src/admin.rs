//! The admin port: `/` answers health (200 when serving, 503 when not) and
//! `/metrics` exports every registered metric in Prometheus text format.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;

/// Whether the process is serving; shared by the admin port and the servers.
#[derive(Clone)]
pub struct Health {
    ready: Arc<AtomicBool>,
    since: SystemTime,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: Arc::new(AtomicBool::new(false)),
            since: SystemTime::now(),
        }
    }
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AdminState {
    health: Health,
    registry: Arc<Registry>,
}

pub fn router(health: Health, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(health_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { health, registry })
}

async fn health_handler(State(state): State<AdminState>) -> impl IntoResponse {
    let up_since = unix_seconds(state.health.since);
    if state.health.is_ready() {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "Server available", "upSince": up_since})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "Server not available", "upSince": up_since})),
        )
    }
}

/// Seconds since the epoch.
fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn metrics_handler(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding metrics failed".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_follows_readiness_and_metrics_export() {
        let mut registry = Registry::default();
        let c: Counter = Counter::default();
        registry.register("spoor_test_things", "things", c.clone());
        c.inc_by(3);
        let health = Health::default();
        let app = router(health.clone(), Arc::new(registry));
        let get = |uri: &str| axum::http::Request::get(uri).body(Body::empty()).unwrap();

        let resp = app.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready(true);
        let resp = app.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);

        let resp = app.oneshot(get("/metrics")).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("spoor_test_things_total 3"), "{text}");
    }
}
