//! `spoor-tracegen query`: latency of trace-by-id and search on the query API,
//! for traces an earlier `send` run stored with the same seed.
use std::time::Instant;

use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::generate::{GenOptions, Generator, OPERATIONS, trace_id};
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

/// The searches timed, each `requests` times: by service, by service and
/// operation, by a tag, by a duration range.
const SEARCHES: [&str; 4] = ["service", "operation", "tag", "duration"];

pub async fn run(o: QueryOptions) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let services = Generator::new(o.generate.clone()).service_names();
    let mut rng = SmallRng::seed_from_u64(42);
    let mut by_id = Vec::new();
    let mut searches: Vec<Vec<std::time::Duration>> = vec![Vec::new(); SEARCHES.len()];
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

        let service = services[i as usize % services.len()].as_str();
        let operation = OPERATIONS[i as usize % OPERATIONS.len()];
        let limit = o.limit.to_string();
        let base = [("service", service), ("limit", &limit), ("lookback", "24h")];
        let extra: [&[(&str, &str)]; 4] = [
            &[],
            &[("operation", operation)],
            &[("tags", r#"{"http.status_code":"500"}"#)],
            &[("minDuration", "20ms"), ("maxDuration", "30ms")],
        ];
        for (times, extra) in searches.iter_mut().zip(extra) {
            let started = Instant::now();
            let resp = http
                .get(format!("{}/api/traces", o.url))
                .query(&base)
                .query(extra)
                .send()
                .await?;
            anyhow::ensure!(
                resp.status().is_success(),
                "search failed: HTTP {}",
                resp.status()
            );
            resp.bytes().await?;
            times.push(started.elapsed());
        }
    }
    let mut report = serde_json::json!({
        "trace_by_id": Latencies::new(by_id).json(),
        "trace_by_id_not_found": missing,
    });
    for (name, times) in SEARCHES.iter().zip(searches) {
        report[format!("search_{name}")] = Latencies::new(times).json();
    }
    println!("{report}");
    Ok(())
}
