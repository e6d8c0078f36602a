//! Where the agent's batches go: collectors over gRPC `PostSpans` when the
//! agent is its own process, or the collector of the same process (the
//! all-in-one) handed the model spans directly, with no encoding, no
//! connection and no decoding between them.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use spoor_model::{Process, Span};
use spoor_proto::api_v2::PostSpansRequest;
use spoor_proto::api_v2::collector_service_client::CollectorServiceClient;
use tonic::Code;

use crate::reporter::CollectorChannel;

/// Spans of one process, as the agent forwards them.
#[derive(Clone, Debug)]
pub struct ModelBatch {
    pub process: Arc<Process>,
    /// Each span's `process` is `process`.
    pub spans: Vec<Span>,
}

/// Why a batch was not taken.
#[derive(Debug)]
pub enum SendError {
    /// The collector kept the valid spans and refused the rest; sending the
    /// batch again cannot help.
    Refused(String),
    /// Nothing was taken; the batch may be sent again. `unreachable` when
    /// no collector answered at all (no connection).
    Failed { message: String, unreachable: bool },
}

/// A destination of the agent's batches.
#[async_trait::async_trait]
pub trait SpanSink: Send + Sync + 'static {
    /// How many destinations one round of attempts goes through before the
    /// reporter backs off.
    fn destinations(&self) -> usize {
        1
    }

    async fn send(&self, batch: &ModelBatch) -> Result<(), SendError>;
}

/// Collectors over gRPC, round-robin over a static list.
pub struct GrpcSink {
    channels: Vec<CollectorChannel>,
    next: AtomicUsize,
}

impl GrpcSink {
    pub fn new(channels: Vec<CollectorChannel>) -> GrpcSink {
        GrpcSink {
            channels,
            next: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl SpanSink for GrpcSink {
    fn destinations(&self) -> usize {
        self.channels.len()
    }

    async fn send(&self, batch: &ModelBatch) -> Result<(), SendError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        let mut client = CollectorServiceClient::new(self.channels[i].clone());
        let request = PostSpansRequest {
            batch: Some(spoor_proto::batch_to_proto(&batch.process, &batch.spans)),
        };
        match client.post_spans(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::InvalidArgument => {
                Err(SendError::Refused(status.message().to_string()))
            }
            Err(status) => Err(SendError::Failed {
                unreachable: is_unreachable(&status),
                message: format!("{:?}: {}", status.code(), status.message()),
            }),
        }
    }
}

/// Whether a failed call never reached a collector (no connection), as
/// opposed to a collector that answered with a refusal.
fn is_unreachable(status: &tonic::Status) -> bool {
    use std::error::Error;
    status.code() == Code::Unavailable
        && status
            .source()
            .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some())
}
