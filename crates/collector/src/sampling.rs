//! Sampling strategies for clients: the collector's `SamplingManager` gRPC
//! service (what agents ask) and `GET /api/sampling` on the HTTP port. Until a
//! strategies file or adaptive sampling is configured, every service gets
//! Jaeger's default: probabilistic at `--sampling.default-sampling-probability`.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use spoor_proto::api_v2::sampling_manager_server::{SamplingManager, SamplingManagerServer};
use spoor_proto::api_v2::{
    ProbabilisticSamplingStrategy, SamplingStrategyParameters, SamplingStrategyResponse,
    SamplingStrategyType,
};
use spoor_proto::sampling_json::{EnumStyle, strategy_to_json};
use tonic::{Request, Status};

/// Answers "how should service X sample?".
pub struct Strategies {
    default: SamplingStrategyResponse,
    served: Counter,
}

impl Strategies {
    pub fn new(default_probability: f64, served: Counter) -> Self {
        Strategies {
            default: SamplingStrategyResponse {
                strategy_type: SamplingStrategyType::Probabilistic as i32,
                probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                    sampling_rate: default_probability,
                }),
                ..Default::default()
            },
            served,
        }
    }

    pub fn strategy(&self, _service: &str) -> SamplingStrategyResponse {
        self.served.inc();
        self.default.clone()
    }
}

struct Grpc(Arc<Strategies>);

#[tonic::async_trait]
impl SamplingManager for Grpc {
    async fn get_sampling_strategy(
        &self,
        request: Request<SamplingStrategyParameters>,
    ) -> Result<tonic::Response<SamplingStrategyResponse>, Status> {
        let service = request.into_inner().service_name;
        if service.is_empty() {
            return Err(Status::invalid_argument("service name is required"));
        }
        Ok(tonic::Response::new(self.0.strategy(&service)))
    }
}

pub fn grpc_service(strategies: Arc<Strategies>) -> SamplingManagerServer<impl SamplingManager> {
    SamplingManagerServer::new(Grpc(strategies))
}

/// `GET /api/sampling?service=NAME`.
pub async fn http_strategy(
    State(strategies): State<Arc<Strategies>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match spoor_server::http::single_param(&params, "service") {
        Ok(service) => Json(strategy_to_json(
            &strategies.strategy(service),
            EnumStyle::Names,
        ))
        .into_response(),
        Err(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
    }
}
