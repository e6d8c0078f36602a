//! gRPC receivers: Jaeger api_v2 CollectorService and OTLP TraceService.
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use spoor_proto::api_v2::collector_service_server::{CollectorService, CollectorServiceServer};
use spoor_proto::api_v2::{PostSpansRequest, PostSpansResponse};
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};

use crate::retry::RpcStatus;
use crate::sampling::Strategies;
use crate::{ProcessError, SpanProcessor, Transport};

impl From<ProcessError> for Status {
    fn from(e: ProcessError) -> Self {
        match e {
            // retryable only with RetryInfo, by the OTLP specification
            ProcessError::QueueFull => RpcStatus::new(Code::ResourceExhausted, e.to_string())
                .retry_later()
                .into_grpc(),
            ProcessError::WriteFailed(_) => RpcStatus::new(Code::Unavailable, e.to_string())
                .retry_later()
                .into_grpc(),
        }
    }
}

struct JaegerCollector(Arc<SpanProcessor>);

#[tonic::async_trait]
impl CollectorService for JaegerCollector {
    async fn post_spans(
        &self,
        request: Request<PostSpansRequest>,
    ) -> Result<Response<PostSpansResponse>, Status> {
        let Some(batch) = request.into_inner().batch else {
            self.0
                .metrics()
                .reject_request(Transport::JaegerGrpc, "empty");
            return Err(Status::invalid_argument("request has no batch"));
        };
        let (spans, errors) = spoor_proto::spans_from_batch(batch);
        let errors = errors
            .into_iter()
            .map(|(i, e)| format!("span #{i}: {e}"))
            .collect();
        let outcome = self.0.process(Transport::JaegerGrpc, spans, errors).await?;
        if outcome.rejected > 0 {
            // the valid spans were kept; the status tells the client what was not
            return Err(Status::invalid_argument(outcome.message));
        }
        Ok(Response::new(PostSpansResponse {}))
    }
}

struct OtlpCollector(Arc<SpanProcessor>);

#[tonic::async_trait]
impl TraceService for OtlpCollector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let outcome = process_otlp(&self.0, Transport::OtlpGrpc, request.into_inner()).await?;
        Ok(Response::new(outcome))
    }
}

/// Shared by OTLP gRPC and HTTP: rejected spans are reported as a partial
/// success, as the OTLP specification asks.
pub async fn process_otlp(
    processor: &SpanProcessor,
    transport: Transport,
    request: ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, ProcessError> {
    let (spans, errors) = spoor_codec::otlp::spans_from_otlp(request.resource_spans);
    let errors = errors.into_iter().map(|e| e.to_string()).collect();
    let outcome = processor.process(transport, spans, errors).await?;
    Ok(ExportTraceServiceResponse {
        partial_success: (outcome.rejected > 0).then_some(ExportTracePartialSuccess {
            rejected_spans: outcome.rejected as i64,
            error_message: outcome.message,
        }),
    })
}

/// The Jaeger api_v2 CollectorService and SamplingManager.
pub fn jaeger_routes(
    processor: Arc<SpanProcessor>,
    strategies: Arc<Strategies>,
    max_message_size: usize,
) -> Routes {
    Routes::new(
        CollectorServiceServer::new(JaegerCollector(processor))
            .max_decoding_message_size(max_message_size)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    )
    .add_service(crate::sampling::grpc_service(strategies))
}

/// The OTLP TraceService.
pub fn otlp_routes(processor: Arc<SpanProcessor>, max_message_size: usize) -> Routes {
    Routes::new(
        TraceServiceServer::new(OtlpCollector(processor))
            .max_decoding_message_size(max_message_size)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    )
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_full_queue_asks_the_client_to_retry_later() {
        let status = Status::from(ProcessError::QueueFull);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(
            crate::retry::retry_delay(&details),
            Some(crate::retry::RETRY_DELAY)
        );
        assert!(
            status
                .metadata()
                .get_bin("google.rpc.retryinfo-bin")
                .is_some()
        );
    }
}
