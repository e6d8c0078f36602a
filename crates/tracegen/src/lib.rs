//! `spoor-tracegen`: sends realistic traces to a collector at a target rate (or
//! flat out) and reports what it achieved; `query` probes the query API's
//! latency on the traces it sent. Every benchmark in docs/benchmarks.md uses it.

mod decode_bench;
mod generate;
mod load;
mod query;
mod report;
mod send;

pub use generate::{GenOptions, Generator};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "spoor-tracegen",
    version,
    about = "Load generator for Spoor and Jaeger-compatible collectors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send traces to a collector.
    Send(send::SendOptions),
    /// Measure trace-by-id and search latency against the query API.
    Query(query::QueryOptions),
    /// Post traces from Jaeger proto-JSON files, moved to the recent past.
    Load(load::LoadOptions),
    /// Measure Thrift decode throughput in process.
    DecodeBench(decode_bench::DecodeBenchOptions),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Send(o) => send::run(o).await,
            Command::Query(o) => query::run(o).await,
            Command::Load(o) => load::run(o).await,
            Command::DecodeBench(o) => decode_bench::run(o),
        }
    }
}
