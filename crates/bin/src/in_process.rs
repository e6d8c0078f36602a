//! The all-in-one's agent hands its spans to the collector of the same
//! process: the model spans go straight into the collector's processor
//! (validation, sampling throughput, the queue), where a separate agent
//! would encode them, send them over gRPC and have them decoded again.
use std::sync::Arc;

use spoor_agent::{ModelBatch, SendError, SpanSink};
use spoor_collector::{ProcessError, SpanProcessor, Transport};

pub struct CollectorSink(pub Arc<SpanProcessor>);

#[async_trait::async_trait]
impl SpanSink for CollectorSink {
    async fn send(&self, batch: &ModelBatch) -> Result<(), SendError> {
        // the processor takes the spans; a retry after a full queue needs them again
        match self
            .0
            .process(Transport::Agent, batch.spans.clone(), vec![])
            .await
        {
            Ok(outcome) if outcome.rejected > 0 => Err(SendError::Refused(outcome.message)),
            Ok(_) => Ok(()),
            Err(e @ (ProcessError::QueueFull | ProcessError::WriteFailed(_))) => {
                Err(SendError::Failed {
                    message: e.to_string(),
                    unreachable: false,
                })
            }
        }
    }
}
