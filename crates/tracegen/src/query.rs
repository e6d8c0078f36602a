//! `spoor-tracegen query`: latency of trace-by-id and search on the query API,
//! for traces an earlier `send` run stored with the same seed.
use std::time::Instant;

use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::generate::{GenOptions, Generator, trace_id};
use crate::report::Latencies;

#[derive(Args, Debug)]
pub struct QueryOptions {
    /// Base URL of the query service.
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    pub url: String,
    /// Traces the send run stored (trace indexes 0..traces).
    #[arg(long, default_value_t = 10_000)]
    pub traces: u64,
    /// Requests of each kind.
    #[arg(long, default_value_t = 1_000)]
    pub requests: u64,
    /// `limit` of each search.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub generate: GenOptions,
}

pub async fn run(o: QueryOptions) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let services = Generator::new(o.generate.clone()).service_names();
    let mut rng = SmallRng::seed_from_u64(42);
    let (mut by_id, mut search) = (Vec::new(), Vec::new());
    let mut missing = 0u64;
    for i in 0..o.requests {
        let id = trace_id(o.generate.seed, rng.random_range(0..o.traces.max(1)));
        let started = Instant::now();
        let resp = http
            .get(format!("{}/api/traces/{id}", o.url))
            .send()
            .await?;
        let status = resp.status();
        resp.bytes().await?;
        by_id.push(started.elapsed());
        if !status.is_success() {
            missing += 1;
        }

        let service = &services[i as usize % services.len()];
        let url = if i % 2 == 0 {
            format!(
                "{}/api/traces?service={service}&limit={}&lookback=24h",
                o.url, o.limit
            )
        } else {
            format!(
                "{}/api/traces?service={service}&limit={}&lookback=24h&tags=%7B%22http.status_code%22%3A%22500%22%7D",
                o.url, o.limit
            )
        };
        let started = Instant::now();
        let resp = http.get(url).send().await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "search failed: HTTP {}",
            resp.status()
        );
        resp.bytes().await?;
        search.push(started.elapsed());
    }
    let report = serde_json::json!({
        "trace_by_id": Latencies::new(by_id).json(),
        "trace_by_id_not_found": missing,
        "search": Latencies::new(search).json(),
    });
    println!("{report}");
    Ok(())
}
