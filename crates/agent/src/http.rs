//! The agent's HTTP port (5778), where Jaeger clients poll for their sampling
//! strategy: `/sampling?service=` (enum names), the legacy `/?service=` (enum
//! numbers) and `/baggageRestrictions?service=`. Strategies come from the
//! collectors' SamplingManager and are cached for a short time; a stale entry
//! is served when no collector answers.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use spoor_proto::api_v2::sampling_manager_client::SamplingManagerClient;
use spoor_proto::api_v2::{SamplingStrategyParameters, SamplingStrategyResponse};
use spoor_proto::sampling_json::{EnumStyle, strategy_to_json};
use spoor_server::http::single_param;

use crate::metrics::AgentMetrics;
use crate::reporter::CollectorChannel;

/// How long a fetched strategy is served before asking again.
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Services remembered at most; the cache starts over beyond it.
const CACHE_SERVICES: usize = 10_000;

pub struct SamplingProxy {
    channels: Vec<CollectorChannel>,
    next: AtomicUsize,
    cache: Mutex<HashMap<String, (Instant, SamplingStrategyResponse)>>,
    metrics: Arc<AgentMetrics>,
}

impl SamplingProxy {
    pub fn new(channels: Vec<CollectorChannel>, metrics: Arc<AgentMetrics>) -> Self {
        SamplingProxy {
            channels,
            next: AtomicUsize::new(0),
            cache: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    async fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, String> {
        let cached = self
            .cache
            .lock()
            .expect("cache lock poisoned")
            .get(service)
            .cloned();
        if let Some((at, s)) = &cached
            && at.elapsed() < CACHE_TTL
        {
            return Ok(s.clone());
        }
        let mut last_error = String::from("no collector configured");
        for _ in 0..self.channels.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
            let mut client = SamplingManagerClient::new(self.channels[i].clone());
            let request = SamplingStrategyParameters {
                service_name: service.to_string(),
            };
            match client.get_sampling_strategy(request).await {
                Ok(resp) => {
                    let strategy = resp.into_inner();
                    let mut cache = self.cache.lock().expect("cache lock poisoned");
                    if cache.len() >= CACHE_SERVICES {
                        cache.clear();
                    }
                    cache.insert(service.to_string(), (Instant::now(), strategy.clone()));
                    return Ok(strategy);
                }
                Err(status) => last_error = format!("{:?}: {}", status.code(), status.message()),
            }
        }
        self.metrics.sampling_errors.inc();
        match cached {
            Some((_, stale)) => Ok(stale),
            None => Err(format!(
                "no collector answered for the sampling strategy: {last_error}"
            )),
        }
    }
}

pub fn router(proxy: Arc<SamplingProxy>) -> Router {
    Router::new()
        .route("/sampling", get(|s, q| serve(s, q, EnumStyle::Names)))
        .route("/", get(|s, q| serve(s, q, EnumStyle::Numbers)))
        .route("/baggageRestrictions", get(baggage_restrictions))
        .with_state(proxy)
}

async fn serve(
    State(proxy): State<Arc<SamplingProxy>>,
    Query(params): Query<Vec<(String, String)>>,
    enums: EnumStyle,
) -> Response {
    let service = match single_param(&params, "service") {
        Ok(s) => s,
        Err(msg) => return (StatusCode::BAD_REQUEST, msg).into_response(),
    };
    proxy.metrics.sampling_requests.inc();
    match proxy.strategy(service).await {
        Ok(s) => Json(strategy_to_json(&s, enums)).into_response(),
        Err(msg) => (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response(),
    }
}

/// No baggage restrictions are configured, so none apply: an empty list.
async fn baggage_restrictions(Query(params): Query<Vec<(String, String)>>) -> Response {
    match single_param(&params, "service") {
        Ok(_) => Json(serde_json::json!([])).into_response(),
        Err(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
    }
}
