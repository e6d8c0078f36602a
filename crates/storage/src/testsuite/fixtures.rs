//! Loading Jaeger's fixtures with the date shift its own suite applies.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use spoor_model::Trace;

use crate::TraceQuery;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/jaeger-integration")
}

/// Jaeger's fixtures are dated 2017-01-26 (and 2017-01-25); its suite moves them
/// to yesterday (and the day before) so that retention-bound stores keep them.
fn shift_dates(text: &str) -> String {
    let day = |n: i64| {
        (chrono::Utc::now() - chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    text.replace("2017-01-25", &day(2))
        .replace("2017-01-26", &day(1))
}

fn read(path: PathBuf) -> String {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
    shift_dates(&text)
}

pub fn trace(name: &str) -> Trace {
    let text = read(dir().join("traces").join(format!("{name}.json")));
    spoor_proto::jsonpb::trace_from_json(&text)
        .unwrap_or_else(|e| panic!("parsing fixture {name}: {e}"))
}

pub struct QueryCase {
    pub caption: String,
    pub query: TraceQuery,
    pub expected: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawCase {
    caption: String,
    query: RawQuery,
    expected_fixtures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawQuery {
    service_name: String,
    operation_name: String,
    tags: Option<BTreeMap<String, serde_json::Value>>,
    start_time_min: String,
    start_time_max: String,
    duration_min: u64,
    duration_max: u64,
    num_traces: usize,
}

fn time(s: &str) -> SystemTime {
    spoor_proto::jsonpb::parse_rfc3339(s).expect("fixture time")
}

/// Durations in queries.json are nanoseconds; zero means "no bound".
fn bound(ns: u64) -> Option<Duration> {
    (ns > 0).then(|| Duration::from_nanos(ns))
}

pub fn query_cases() -> Vec<QueryCase> {
    let raw: Vec<RawCase> =
        serde_json::from_str(&read(dir().join("queries.json"))).expect("parsing queries.json");
    raw.into_iter()
        .map(|c| QueryCase {
            caption: c.caption,
            query: TraceQuery {
                service_name: c.query.service_name,
                operation_name: Some(c.query.operation_name).filter(|o| !o.is_empty()),
                tags: c
                    .query
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect(),
                start_time_min: time(&c.query.start_time_min),
                start_time_max: time(&c.query.start_time_max),
                duration_min: bound(c.query.duration_min),
                duration_max: bound(c.query.duration_max),
                num_traces: c.query.num_traces,
            },
            expected: c.expected_fixtures,
        })
        .collect()
}
