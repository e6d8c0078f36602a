//! Sampling strategies for clients: the collector's `SamplingManager` gRPC
//! service (what agents ask) and `GET /api/sampling` on the HTTP port, both
//! answered by the configured strategy provider.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use spoor_proto::api_v2::sampling_manager_server::{SamplingManager, SamplingManagerServer};
use spoor_proto::api_v2::{SamplingStrategyParameters, SamplingStrategyResponse};
use spoor_proto::sampling_json::{EnumStyle, strategy_to_json};
use tonic::{Request, Status};

/// The provider, counting what it serves.
pub struct Strategies {
    provider: spoor_sampling::Strategies,
    served: Counter,
}

impl Strategies {
    pub fn new(provider: spoor_sampling::Strategies, served: Counter) -> Self {
        Strategies { provider, served }
    }

    pub fn strategy(&self, service: &str) -> SamplingStrategyResponse {
        self.served.inc();
        self.provider.strategy(service)
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
