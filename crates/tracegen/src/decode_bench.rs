//! `spoor-tracegen decode-bench`: Thrift decode throughput in process, one
//! thread, on the generator's spans: the agent's per-packet CPU cost without
//! the network.
use std::time::{Instant, SystemTime};

use clap::Args;
use spoor_codec::thrift::{Protocol, decode_emit_batch, encode_emit_batch};

use crate::generate::{GenOptions, Generator};

#[derive(Args, Debug)]
pub struct DecodeBenchOptions {
    /// Traces per datagram (spans per datagram = this × --spans-per-trace).
    #[arg(long, default_value_t = 10)]
    pub batch_traces: u64,
    /// Distinct datagrams decoded in turn.
    #[arg(long, default_value_t = 200)]
    pub datagrams: u64,
    /// Passes over all datagrams.
    #[arg(long, default_value_t = 50)]
    pub rounds: u64,
    #[command(flatten)]
    pub generate: GenOptions,
}

pub fn run(o: DecodeBenchOptions) -> anyhow::Result<()> {
    // one process per datagram, as a Jaeger client sends
    let generator = Generator::new(GenOptions {
        services: 1,
        ..o.generate.clone()
    });
    let now = SystemTime::now();
    let mut report = serde_json::Map::new();
    for (name, protocol) in [("compact", Protocol::Compact), ("binary", Protocol::Binary)] {
        let datagrams: Vec<Vec<u8>> = (0..o.datagrams)
            .map(|d| {
                let spans: Vec<_> = (d * o.batch_traces..(d + 1) * o.batch_traces)
                    .flat_map(|i| generator.trace(i, now))
                    .collect();
                encode_emit_batch(&spans[0].process, &spans, protocol, d as i32)
            })
            .collect();
        let bytes: usize = datagrams.iter().map(Vec::len).sum();
        let started = Instant::now();
        let mut spans = 0usize;
        for _ in 0..o.rounds {
            for d in &datagrams {
                spans += decode_emit_batch(d, protocol)?.spans.len();
            }
        }
        let secs = started.elapsed().as_secs_f64();
        report.insert(
            name.into(),
            serde_json::json!({
                "bytes_per_datagram": bytes as u64 / o.datagrams.max(1),
                "spans_per_datagram": spans as u64 / (o.datagrams * o.rounds).max(1),
                "decode_mb_per_second": ((bytes as f64 * o.rounds as f64) / secs / 1e6 * 10.0).round() / 10.0,
                "decode_spans_per_second": (spans as f64 / secs).round(),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
