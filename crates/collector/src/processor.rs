//! The rules every receiver shares: validate spans, count them, and queue the
//! valid ones, refusing or dropping when the queue is full.
use std::sync::Arc;

use spoor_model::Span;

use crate::metrics::{CollectorMetrics, RejectLabel, Transport, TransportLabel};
use crate::options::QueueFullAction;
use crate::queue::{SpanQueue, WriteFailure};

/// How many rejection reasons a response lists before summarising.
const MAX_LISTED_ERRORS: usize = 5;

/// What happened to a batch that was taken.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: usize,
    pub rejected: usize,
    /// Why spans were rejected, for the client; empty when none were.
    pub message: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    #[error("collector queue is full; retry later")]
    QueueFull,
    /// Only when acknowledging after the write: the spans were not stored.
    /// The reason is one of a few fixed words (storage unavailable, storage
    /// error, collector stopped): the backend's own text, which may name
    /// hosts or indices, goes only to the log.
    #[error("spans could not be stored ({0}); retry later")]
    WriteFailed(&'static str),
}

pub struct SpanProcessor {
    queue: SpanQueue,
    full_action: QueueFullAction,
    /// Answer the client only once its spans are written.
    ack_after_write: bool,
    metrics: Arc<CollectorMetrics>,
    /// Counts accepted root spans for adaptive sampling.
    throughput: Option<Arc<spoor_sampling::adaptive::Aggregator>>,
    /// Counts spans into RED metrics (service performance monitoring).
    red: Option<Arc<spoor_red::Red>>,
}

/// A span the collector refuses to store, and why.
fn invalid(span: &Span) -> Option<(&'static str, String)> {
    if span.trace_id.is_zero() {
        return Some((
            "invalid_trace_id",
            format!("span {}: trace id is zero", span.span_id),
        ));
    }
    if span.process.service_name.is_empty() {
        return Some((
            "missing_service",
            format!("span {}: process has no service name", span.span_id),
        ));
    }
    None
}

impl SpanProcessor {
    pub(crate) fn new(
        queue: SpanQueue,
        full_action: QueueFullAction,
        metrics: Arc<CollectorMetrics>,
    ) -> Self {
        SpanProcessor {
            queue,
            full_action,
            ack_after_write: false,
            metrics,
            throughput: None,
            red: None,
        }
    }

    /// Counts accepted spans into RED metrics.
    pub(crate) fn with_red(mut self, red: Arc<spoor_red::Red>) -> Self {
        self.red = Some(red);
        self
    }

    /// Reports accepted spans to adaptive sampling's throughput counter.
    pub(crate) fn with_throughput(
        mut self,
        aggregator: Arc<spoor_sampling::adaptive::Aggregator>,
    ) -> Self {
        self.throughput = Some(aggregator);
        self
    }

    /// Acknowledge only after the write, so an acknowledged span is stored.
    pub(crate) fn ack_after_write(mut self, on: bool) -> Self {
        self.ack_after_write = on;
        self
    }

    pub fn metrics(&self) -> &CollectorMetrics {
        &self.metrics
    }

    /// Validates and queues `spans`. `decode_errors` are spans of the same
    /// request that could not even be decoded; they count as rejected
    /// (`reason` "malformed") and their messages reach the client.
    pub async fn process(
        &self,
        transport: Transport,
        spans: Vec<Span>,
        decode_errors: Vec<String>,
    ) -> Result<Outcome, ProcessError> {
        let label = TransportLabel { transport };
        let received = spans.len() + decode_errors.len();
        self.metrics
            .spans_received
            .get_or_create(&label)
            .inc_by(received as u64);
        let reject = |reason: &'static str, n: usize| {
            self.metrics
                .spans_rejected
                .get_or_create(&RejectLabel { transport, reason })
                .inc_by(n as u64);
        };
        if !decode_errors.is_empty() {
            reject("malformed", decode_errors.len());
        }
        let mut errors = decode_errors;
        let valid: Vec<Span> = spans
            .into_iter()
            .filter(|span| match invalid(span) {
                None => true,
                Some((reason, message)) => {
                    reject(reason, 1);
                    errors.push(message);
                    false
                }
            })
            .collect();
        let mut accepted = valid.len();
        let rejected_on_arrival = errors.len();
        // spans the store refused: one message for all of them
        let mut refused_by_store = 0;
        if accepted > 0 {
            // counted before queueing: the queue takes the spans; a refused
            // batch is retried by the client and then counted again, as in Jaeger
            if let Some(throughput) = &self.throughput {
                valid.iter().for_each(|span| throughput.record(span));
            }
            if let Some(red) = &self.red {
                red.record(&valid, std::time::SystemTime::now());
            }
            let pushed = self.queue.try_push(valid, self.ack_after_write);
            if pushed.is_err() {
                match self.full_action {
                    QueueFullAction::Reject => {
                        reject("queue_full", accepted);
                        return Err(ProcessError::QueueFull);
                    }
                    QueueFullAction::Drop => {
                        self.metrics
                            .spans_dropped
                            .get_or_create(&label)
                            .inc_by(accepted as u64);
                    }
                }
            } else {
                self.metrics
                    .spans_accepted
                    .get_or_create(&label)
                    .inc_by(accepted as u64);
            }
            if let Ok(Some(written)) = pushed {
                let result = written
                    .await
                    .unwrap_or(Err(WriteFailure::Failed("collector stopped")));
                match result {
                    Ok(()) => {}
                    Err(WriteFailure::Failed(e)) => return Err(ProcessError::WriteFailed(e)),
                    Err(WriteFailure::Refused { count, reason }) => {
                        // the client is told, as for spans refused on arrival
                        reject("store_refused", count);
                        accepted -= count.min(accepted);
                        errors.push(format!("{count} span(s) not stored: {reason}"));
                        refused_by_store += count;
                    }
                }
            }
        }
        Ok(Outcome {
            accepted,
            rejected: rejected_on_arrival + refused_by_store,
            message: summarize(rejected_on_arrival + refused_by_store, &errors),
        })
    }
}

fn summarize(rejected: usize, errors: &[String]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut message = format!("{rejected} span(s) rejected: ");
    message.push_str(&errors[..errors.len().min(MAX_LISTED_ERRORS)].join("; "));
    if errors.len() > MAX_LISTED_ERRORS {
        message.push_str(&format!("; and {} more", errors.len() - MAX_LISTED_ERRORS));
    }
    message
}
