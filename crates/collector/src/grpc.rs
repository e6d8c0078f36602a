//! gRPC receivers: Jaeger api_v2 CollectorService and OTLP TraceService.
use std::sync::Arc;

use std::convert::Infallible;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::bytes::Buf;
use spoor_codec::otlp::Converted;
use spoor_proto::api_v2::collector_service_server::{CollectorService, CollectorServiceServer};
use spoor_proto::api_v2::{PostSpansRequest, PostSpansResponse};
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstEncoder;

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

/// The OTLP TraceService. Its codec reads a request straight into model
/// spans (`spoor_codec::otlp::decode_export_request`) rather than through
/// prost's message structs, which cost a fifth of the collector's CPU.
#[derive(Clone)]
struct OtlpTraceService {
    processor: Arc<SpanProcessor>,
    max_message_size: usize,
}

impl NamedService for OtlpTraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl Service<http::Request<Body>> for OtlpTraceService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if request.uri().path() != EXPORT_PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            let codec = OtlpCodec(Arc::clone(&this.processor));
            let mut grpc = Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(this.max_message_size);
            Ok(grpc.unary(Export(this.processor), request).await)
        })
    }
}

struct Export(Arc<SpanProcessor>);

impl UnaryService<Converted> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<Converted>) -> Self::Future {
        let processor = Arc::clone(&self.0);
        Box::pin(async move {
            let outcome =
                process_otlp(&processor, Transport::OtlpGrpc, request.into_inner()).await?;
            Ok(Response::new(outcome))
        })
    }
}

/// Responses through prost; requests through the span reader.
struct OtlpCodec(Arc<SpanProcessor>);

impl Codec for OtlpCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Converted;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = OtlpDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        OtlpDecoder(Arc::clone(&self.0))
    }
}

struct OtlpDecoder(Arc<SpanProcessor>);

impl Decoder for OtlpDecoder {
    type Item = Converted;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Converted>, Status> {
        let message = buf.copy_to_bytes(buf.remaining());
        match spoor_codec::otlp::decode_export_request(&message) {
            Ok(converted) => Ok(Some(converted)),
            Err(e) => {
                self.0
                    .metrics()
                    .reject_request(Transport::OtlpGrpc, "undecodable");
                // INTERNAL, as gRPC's status codes document for a parse error
                Err(Status::internal(format!(
                    "failed to decode Protobuf message: {e}"
                )))
            }
        }
    }
}

/// Shared by OTLP gRPC and HTTP: rejected spans are reported as a partial
/// success, as the OTLP specification asks.
pub async fn process_otlp(
    processor: &SpanProcessor,
    transport: Transport,
    (spans, errors): Converted,
) -> Result<ExportTraceServiceResponse, ProcessError> {
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
    Routes::new(OtlpTraceService {
        processor,
        max_message_size,
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use prost::Message;
    use tower::ServiceExt;

    use super::*;
    use crate::test_support::{assert_zero_id_refused, processor, request_with, stored};

    const MAX: usize = 64 * 1024;

    /// The OTLP routes on a socket, for a real client.
    async fn serve(processor: Arc<SpanProcessor>) -> TraceServiceClient<tonic::transport::Channel> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(otlp_routes(processor, MAX))
                .serve_with_incoming(incoming),
        );
        TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_real_client_exports_plain_and_gzip() {
        let (processor, store, _) = processor(100);
        let mut client = serve(processor).await;
        let answer = client
            .export(request_with(&[1]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.partial_success, None);
        assert!(stored(&store, 1).await);

        let mut client = client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
        client.export(request_with(&[2])).await.unwrap();
        assert!(stored(&store, 2).await);

        // a span with a zero trace id is refused by name, its neighbour kept
        let answer = client
            .export(request_with(&[0, 3]))
            .await
            .unwrap()
            .into_inner();
        assert_zero_id_refused(answer, &store).await;
    }

    /// A gRPC frame: uncompressed, its length, the message.
    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend((message.len() as u32).to_be_bytes());
        out.extend(message);
        out
    }

    #[tokio::test]
    async fn an_undecodable_request_is_refused_and_counted() {
        let (processor, store, metrics) = processor(100);
        let app = otlp_routes(processor, MAX).into_axum_router();
        // a span whose name is not UTF-8, beside a good request's bytes
        let mut bytes = request_with(&[5]).encode_to_vec();
        let at = bytes.windows(5).position(|w| w == b"GET /").unwrap();
        bytes[at] = 0xff;
        let request = http::Request::post(EXPORT_PATH)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(axum::body::Body::from(frame(&bytes)))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "13");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(
            message.starts_with("failed%20to%20decode%20Protobuf%20message"),
            "{message}"
        );
        let undecodable = crate::metrics::RejectLabel {
            transport: Transport::OtlpGrpc,
            reason: "undecodable",
        };
        assert_eq!(
            metrics.requests_rejected.get_or_create(&undecodable).get(),
            1
        );
        assert!(!stored(&store, 5).await);
    }

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
