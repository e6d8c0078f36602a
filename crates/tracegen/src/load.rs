//! `spoor-tracegen load`: posts traces from Jaeger proto-JSON files (the
//! storage fixtures' format) to a collector over Jaeger gRPC, moved in time
//! so they look recent. Used to fill a server for UI tests and demos.
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use spoor_proto::api_v2::collector_service_client::CollectorServiceClient;
use spoor_proto::api_v2::{Batch, PostSpansRequest};

#[derive(clap::Args, Debug)]
pub struct LoadOptions {
    /// Collector gRPC address (host:port).
    #[arg(long, default_value = "127.0.0.1:14250")]
    pub endpoint: String,
    /// How long before now each trace starts (0s: keep the files' times).
    #[arg(long, default_value = "10m", value_parser = spoor_model::parse_go_duration)]
    pub start_ago: Duration,
    /// Trace files, each `{"spans": [...]}` in api_v2 proto-JSON.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub async fn run(o: LoadOptions) -> anyhow::Result<()> {
    let mut client = CollectorServiceClient::connect(format!("http://{}", o.endpoint))
        .await
        .context("while connecting over Jaeger gRPC")?
        .max_encoding_message_size(64 << 20);
    let mut total = 0;
    for file in &o.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("while reading {}", file.display()))?;
        let mut trace = spoor_proto::jsonpb::trace_from_json(&text)
            .with_context(|| format!("while parsing {}", file.display()))?;
        if let (false, Some(start)) = (o.start_ago.is_zero(), trace.start_time()) {
            let target = SystemTime::now() - o.start_ago;
            for span in &mut trace.spans {
                let offset = span.start_time.duration_since(start).unwrap_or_default();
                span.start_time = target + offset;
                for log in &mut span.logs {
                    let offset = log.timestamp.duration_since(start).unwrap_or_default();
                    log.timestamp = target + offset;
                }
            }
        }
        for chunk in trace.spans.chunks(1000) {
            let batch = Batch {
                spans: chunk.iter().map(spoor_proto::span_to_proto).collect(),
                process: None,
            };
            client
                .post_spans(PostSpansRequest { batch: Some(batch) })
                .await
                .with_context(|| format!("while posting {}", file.display()))?;
        }
        total += trace.spans.len();
    }
    println!("{{\"files\":{},\"spans\":{total}}}", o.files.len());
    Ok(())
}
