//! Parsing of the HTTP API's query parameters, with Jaeger's names, units
//! and error messages.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_model::{SpanKind, TraceId, parse_go_duration};
use spoor_storage::{DEFAULT_NUM_TRACES, TraceQuery};

/// The most traces one search returns, whatever `limit` asks for.
pub const MAX_SEARCH_LIMIT: usize = 10_000;
/// Lookback of a search without `start`.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
/// Lookback of `/api/dependencies` without `lookback`.
pub const DEFAULT_DEPENDENCY_LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// The longest `/api/dependencies` window: a backend reads one partition per
/// day of it (Cassandra), so an unbounded one is an unbounded amount of work.
pub const MAX_DEPENDENCY_LOOKBACK: Duration = Duration::from_secs(31 * 24 * 3600);

/// The raw pairs of a query string, repeats kept.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last non-empty value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn bad(name: &str, why: impl std::fmt::Display) -> String {
    format!("unable to parse param '{name}': {why}")
}

fn micros_param(p: &Params, name: &str) -> Result<Option<SystemTime>, String> {
    p.one(name)
        .map(|v| {
            v.parse::<u64>()
                .map(|us| UNIX_EPOCH + Duration::from_micros(us))
                .map_err(|e| {
                    bad(
                        name,
                        format!("{v:?} is not microseconds since the epoch: {e}"),
                    )
                })
        })
        .transpose()
}

fn millis_param(p: &Params, name: &str) -> Result<Option<u64>, String> {
    p.one(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|e| bad(name, format!("{v:?} is not milliseconds: {e}")))
        })
        .transpose()
}

fn duration_param(p: &Params, name: &str) -> Result<Option<Duration>, String> {
    p.one(name)
        .map(|v| parse_go_duration(v).map_err(|e| bad(name, e)))
        .transpose()
}

/// What `/api/traces` asks for: either traces by id or a search.
#[derive(Debug, PartialEq)]
pub enum TracesRequest {
    ByIds(Vec<TraceId>),
    Search(TraceQuery),
}

pub fn traces_request(p: &Params, now: SystemTime) -> Result<TracesRequest, String> {
    let ids: Vec<TraceId> = p
        .all("traceID")
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|e| bad("traceID", e)))
        .collect::<Result<_, _>>()?;
    if !ids.is_empty() {
        return Ok(TracesRequest::ByIds(ids));
    }
    let service_name = p
        .one("service")
        .ok_or("parameter 'service' is required")?
        .to_string();
    let end = micros_param(p, "end")?.unwrap_or(now);
    let lookback = match p.one("lookback") {
        None | Some("custom") => DEFAULT_LOOKBACK,
        Some(v) => parse_go_duration(v).map_err(|e| bad("lookback", e))?,
    };
    let start = match micros_param(p, "start")? {
        Some(s) => s,
        None => end.checked_sub(lookback).unwrap_or(UNIX_EPOCH),
    };
    if start > end {
        return Err("parameter 'start' must not be after 'end'".into());
    }
    let limit = match p.one("limit") {
        None => DEFAULT_NUM_TRACES,
        Some(v) => v
            .parse::<usize>()
            .map_err(|e| bad("limit", e))?
            .min(MAX_SEARCH_LIMIT),
    };
    let duration_min = duration_param(p, "minDuration")?;
    let duration_max = duration_param(p, "maxDuration")?;
    if let (Some(min), Some(max)) = (duration_min, duration_max)
        && min > max
    {
        return Err("parameter 'minDuration' must not exceed 'maxDuration'".into());
    }
    let mut tags = BTreeMap::new();
    for v in p.all("tag") {
        let (k, val) = v
            .split_once(':')
            .ok_or_else(|| bad("tag", format!("{v:?} is not key:value")))?;
        tags.insert(k.to_string(), val.to_string());
    }
    for v in p.all("tags").filter(|v| !v.is_empty()) {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(v).map_err(|e| bad("tags", format!("not a JSON object: {e}")))?;
        for (k, val) in map {
            let val = match val {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => val.to_string(),
                other => {
                    return Err(bad(
                        "tags",
                        format!("value of {k:?} is not a scalar: {other}"),
                    ));
                }
            };
            tags.insert(k, val);
        }
    }
    Ok(TracesRequest::Search(TraceQuery {
        service_name,
        operation_name: p.one("operation").map(str::to_string),
        tags: tags.into_iter().collect(),
        start_time_min: start,
        start_time_max: end,
        duration_min,
        duration_max,
        num_traces: limit,
    }))
}

/// `spanKind` of `/api/operations`: empty or absent means every kind.
pub fn span_kind(p: &Params) -> Result<Option<SpanKind>, String> {
    match p.one("spanKind") {
        None => Ok(None),
        Some(v) => match SpanKind::parse(v) {
            SpanKind::Unspecified => Err(bad(
                "spanKind",
                format!("{v:?} is not one of server, client, producer, consumer, internal"),
            )),
            kind => Ok(Some(kind)),
        },
    }
}

pub fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, String> {
    p.one(name)
        .ok_or_else(|| format!("parameter '{name}' is required"))
}

/// `endTs` and `lookback` of `/api/dependencies`, both in milliseconds.
pub fn dependencies_window(p: &Params, now: SystemTime) -> Result<(SystemTime, Duration), String> {
    let end = millis_param(p, "endTs")?
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or(now);
    let lookback = millis_param(p, "lookback")?
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_DEPENDENCY_LOOKBACK);
    if lookback > MAX_DEPENDENCY_LOOKBACK {
        return Err(format!(
            "'lookback' may be at most {} days ({} ms); ask for a shorter window",
            MAX_DEPENDENCY_LOOKBACK.as_secs() / 86_400,
            MAX_DEPENDENCY_LOOKBACK.as_millis()
        ));
    }
    Ok((end, lookback))
}

/// Traces one api_v3 search returns without `query.searchDepth`, as Jaeger.
pub const API_V3_SEARCH_DEPTH: usize = 100;

/// The value of api_v3 parameter `name`, or of its snake_case alias (what
/// Jaeger before v2.15 took), with the name that was given.
fn v3_param<'a>(
    p: &'a Params,
    name: &'static str,
    alias: &'static str,
) -> Option<(&'a str, &'static str)> {
    p.one(name)
        .map(|v| (v, name))
        .or_else(|| p.one(alias).map(|v| (v, alias)))
}

fn malformed(name: &str, why: impl std::fmt::Display) -> String {
    format!("malformed parameter {name}: {why}")
}

/// An RFC 3339 time with up to nanoseconds, as api_v3 takes them.
pub fn rfc3339(v: &str, name: &str) -> Result<SystemTime, String> {
    let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|e| malformed(name, e))?;
    let nanos = t
        .timestamp_nanos_opt()
        .filter(|n| *n >= 0)
        .ok_or_else(|| malformed(name, "out of range"))?;
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

/// The search of `GET /api/v3/traces` and `/api/v3/trace-summaries`:
/// `query.serviceName`, `query.operationName`, `query.startTimeMin` and
/// `query.startTimeMax` (RFC 3339, required), `query.durationMin/Max` (Go
/// durations), `query.searchDepth` (alias `query.num_traces`) and
/// `query.attributes` (a JSON object), each also under its snake_case name.
pub fn api_v3_query(p: &Params) -> Result<TraceQuery, String> {
    let text = |name, alias| v3_param(p, name, alias).map(|(v, _)| v.to_string());
    let (min, max) = match (
        v3_param(p, "query.startTimeMin", "query.start_time_min"),
        v3_param(p, "query.startTimeMax", "query.start_time_max"),
    ) {
        (Some((min, min_name)), Some((max, max_name))) => {
            (rfc3339(min, min_name)?, rfc3339(max, max_name)?)
        }
        _ => return Err("query.startTimeMin and query.startTimeMax are required".into()),
    };
    if min >= max {
        return Err("query.startTimeMin must be before query.startTimeMax".into());
    }
    let duration = |name, alias| {
        v3_param(p, name, alias)
            .map(|(v, given)| parse_go_duration(v).map_err(|e| malformed(given, e)))
            .transpose()
    };
    let duration_min = duration("query.durationMin", "query.duration_min")?;
    let duration_max = duration("query.durationMax", "query.duration_max")?;
    let depth = v3_param(p, "query.searchDepth", "query.search_depth")
        .or_else(|| p.one("query.num_traces").map(|v| (v, "query.num_traces")));
    let num_traces = match depth {
        None => API_V3_SEARCH_DEPTH,
        Some((v, given)) => match v.parse::<i64>().map_err(|e| malformed(given, e))? {
            n if n <= 0 => API_V3_SEARCH_DEPTH,
            n => (n as usize).min(MAX_SEARCH_LIMIT),
        },
    };
    let mut tags = BTreeMap::new();
    if let Some(v) = p.one("query.attributes") {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(v).map_err(|e| malformed("query.attributes", e))?;
        for (k, val) in map {
            let val = match val {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => val.to_string(),
                other => {
                    return Err(malformed(
                        "query.attributes",
                        format!("value of {k:?} is not a scalar: {other}"),
                    ));
                }
            };
            tags.insert(k, val);
        }
    }
    Ok(TraceQuery {
        service_name: text("query.serviceName", "query.service_name").unwrap_or_default(),
        operation_name: text("query.operationName", "query.operation_name"),
        tags: tags.into_iter().collect(),
        start_time_min: min,
        start_time_max: max,
        duration_min,
        duration_max,
        num_traces,
    })
}

/// `spanKind` (alias `span_kind`) of `GET /api/v3/operations`.
pub fn api_v3_span_kind(p: &Params) -> Result<Option<SpanKind>, String> {
    match v3_param(p, "spanKind", "span_kind") {
        None => Ok(None),
        Some((v, given)) => match SpanKind::parse(v) {
            SpanKind::Unspecified => Err(malformed(
                given,
                format!("{v:?} is not one of server, client, producer, consumer, internal"),
            )),
            kind => Ok(Some(kind)),
        },
    }
}

/// What `/api/metrics/{latencies,calls,errors}` ask for (Jaeger's service
/// performance monitoring API): services, span kinds, and a window of
/// `lookback` before `end` in steps of `step`, rates per `rate_per`.
#[derive(Debug, PartialEq)]
pub struct MetricsQuery {
    pub services: Vec<String>,
    pub group_by_operation: bool,
    pub span_kinds: Vec<SpanKind>,
    pub end: SystemTime,
    pub lookback: Duration,
    pub step: Duration,
    pub rate_per: Duration,
    /// `quantile` of `/api/metrics/latencies`.
    pub quantile: Option<f64>,
}

/// Jaeger's parsing of the metrics parameters, its defaults (the last hour
/// in 5 s steps, rates per 10 minutes, server spans) and its messages.
pub fn metrics_query(p: &Params, now: SystemTime, latencies: bool) -> Result<MetricsQuery, String> {
    let quantile = if latencies {
        let v = p.one("quantile").unwrap_or_default();
        let q = v
            .parse::<f64>()
            .map_err(|e| bad("quantile", format!("{v:?} is not a number: {e}")))?;
        Some(q)
    } else {
        None
    };
    let services: Vec<String> = p.all("service").map(str::to_string).collect();
    if services.is_empty() {
        return Err(bad("service", "please provide at least one service name"));
    }
    let group_by_operation = match p.one("groupByOperation") {
        None => false,
        Some(v) => v.parse::<bool>().map_err(|e| bad("groupByOperation", e))?,
    };
    let mut span_kinds = Vec::new();
    for v in p.all("spanKind").filter(|v| !v.is_empty()) {
        match SpanKind::parse(v) {
            SpanKind::Unspecified if v != "unspecified" => {
                return Err(bad("spanKind", format!("unsupported span kind: '{v}'")));
            }
            kind => span_kinds.push(kind),
        }
    }
    if span_kinds.is_empty() {
        span_kinds.push(SpanKind::Server);
    }
    let millis = |name: &str, default: Duration| {
        millis_param(p, name).map(|v| v.map_or(default, Duration::from_millis))
    };
    let end = millis_param(p, "endTs")?
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or(now);
    Ok(MetricsQuery {
        services,
        group_by_operation,
        span_kinds,
        end,
        lookback: millis("lookback", Duration::from_secs(3600))?,
        step: millis("step", Duration::from_secs(5))?,
        rate_per: millis("ratePer", Duration::from_secs(600))?,
        quantile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params(
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
        )
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn parses_a_full_search() {
        let p = params(
            r#"service=web&operation=GET&start=1000000&end=2000000&minDuration=1.2ms&maxDuration=1s&limit=20&tag=error:true&tags={"http.status_code":500,"a":"b"}"#,
        );
        let TracesRequest::Search(q) = traces_request(&p, now()).unwrap() else {
            panic!()
        };
        assert_eq!(q.service_name, "web");
        assert_eq!(q.operation_name.as_deref(), Some("GET"));
        assert_eq!(q.start_time_min, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(q.start_time_max, UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(q.duration_min, Some(Duration::from_micros(1200)));
        assert_eq!(q.duration_max, Some(Duration::from_secs(1)));
        assert_eq!(q.num_traces, 20);
        let tags: Vec<(&str, &str)> = q
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            vec![("a", "b"), ("error", "true"), ("http.status_code", "500")]
        );
    }

    #[test]
    fn defaults_and_trace_ids() {
        let TracesRequest::Search(q) = traces_request(&params("service=web"), now()).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.start_time_max, now());
        assert_eq!(q.start_time_min, now() - DEFAULT_LOOKBACK);
        assert_eq!(q.num_traces, DEFAULT_NUM_TRACES);
        let r = traces_request(
            &params("traceID=abc&traceID=00000000000000010000000000000002"),
            now(),
        );
        assert_eq!(
            r.unwrap(),
            TracesRequest::ByIds(vec![TraceId(0xabc), TraceId::new(1, 2)])
        );
        let TracesRequest::Search(q) =
            traces_request(&params("service=web&limit=999999"), now()).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.num_traces, MAX_SEARCH_LIMIT);
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        let cases = [
            ("", "'service'"),
            ("service=a&limit=x", "'limit'"),
            ("service=a&limit=-1", "'limit'"),
            ("service=a&start=yesterday", "'start'"),
            ("service=a&end=1.5", "'end'"),
            ("service=a&start=20&end=10", "'start'"),
            ("service=a&minDuration=fast", "'minDuration'"),
            ("service=a&minDuration=2s&maxDuration=1s", "'minDuration'"),
            ("service=a&tags=[1]", "'tags'"),
            ("service=a&tags={\"k\":[1]}", "'tags'"),
            ("service=a&tag=novalue", "'tag'"),
            ("traceID=xyz", "'traceID'"),
            ("service=a&lookback=forever", "'lookback'"),
        ];
        for (q, needle) in cases {
            let err = traces_request(&params(q), now()).unwrap_err();
            assert!(err.contains(needle), "{q}: {err}");
        }
        assert!(
            span_kind(&params("spanKind=sideways"))
                .unwrap_err()
                .contains("'spanKind'")
        );
        assert_eq!(
            span_kind(&params("spanKind=server")).unwrap(),
            Some(SpanKind::Server)
        );
        assert!(
            dependencies_window(&params("endTs=now"), now())
                .unwrap_err()
                .contains("'endTs'")
        );
    }

    #[test]
    fn the_dependencies_window_is_bounded() {
        let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let week = params("lookback=604800000");
        assert_eq!(
            dependencies_window(&week, now).unwrap().1,
            Duration::from_secs(7 * 86_400)
        );
        let years = params("lookback=94608000000");
        let err = dependencies_window(&years, now).unwrap_err();
        assert!(
            err.starts_with("'lookback' may be at most 31 days"),
            "{err}"
        );
    }

    #[test]
    fn api_v3_search_takes_camel_case_and_snake_case_names() {
        let camel = params(
            "query.serviceName=web&query.operationName=GET /&query.startTimeMin=2026-12-01T10:00:00Z&query.startTimeMax=2026-12-01T11:00:00.5Z&query.durationMin=1.5ms&query.searchDepth=7&query.attributes={\"http.status_code\":\"500\",\"error\":true}",
        );
        let q = api_v3_query(&camel).unwrap();
        assert_eq!(q.service_name, "web");
        assert_eq!(q.operation_name.as_deref(), Some("GET /"));
        assert_eq!(q.num_traces, 7);
        assert_eq!(q.duration_min, Some(Duration::from_micros(1500)));
        assert_eq!(
            q.tags,
            vec![
                ("error".into(), "true".into()),
                ("http.status_code".into(), "500".into())
            ]
        );
        let min = UNIX_EPOCH + Duration::from_secs(1_796_119_200);
        assert_eq!(q.start_time_min, min);
        assert_eq!(q.start_time_max, min + Duration::from_millis(3_600_500));
        let snake = params(
            "query.service_name=web&query.start_time_min=2026-12-01T10:00:00Z&query.start_time_max=2026-12-01T11:00:00+00:00&query.num_traces=3",
        );
        let q = api_v3_query(&snake).unwrap();
        assert_eq!((q.service_name.as_str(), q.num_traces), ("web", 3));
        assert_eq!(
            api_v3_query(&params(
                "query.serviceName=web&query.startTimeMin=2026-12-01T10:00:00Z"
            ))
            .unwrap_err(),
            "query.startTimeMin and query.startTimeMax are required"
        );
        let bad = api_v3_query(&params(
            "query.startTimeMin=yesterday&query.startTimeMax=2026-12-01T11:00:00Z",
        ))
        .unwrap_err();
        assert!(
            bad.starts_with("malformed parameter query.startTimeMin: "),
            "{bad}"
        );
        let bad = api_v3_query(&params(
            "query.start_time_min=2026-12-01T10:00:00Z&query.start_time_max=2026-12-01T11:00:00Z&query.duration_max=fast",
        ))
        .unwrap_err();
        assert!(
            bad.starts_with("malformed parameter query.duration_max: "),
            "{bad}"
        );
        assert_eq!(
            api_v3_query(&params(
                "query.startTimeMin=2026-12-01T10:00:00Z&query.startTimeMax=2026-12-01T11:00:00Z"
            ))
            .unwrap()
            .num_traces,
            API_V3_SEARCH_DEPTH
        );
    }

    #[test]
    fn metrics_parameters_as_jaeger_parses_them() {
        let q = metrics_query(
            &params("service=a&service=b&groupByOperation=true&spanKind=client&spanKind=server&endTs=1000&lookback=60000&step=1000&ratePer=60000&quantile=0.95"),
            now(),
            true,
        )
        .unwrap();
        assert_eq!(q.services, ["a", "b"]);
        assert!(q.group_by_operation);
        assert_eq!(q.span_kinds, [SpanKind::Client, SpanKind::Server]);
        assert_eq!(q.end, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            (q.lookback, q.step, q.rate_per),
            (
                Duration::from_secs(60),
                Duration::from_secs(1),
                Duration::from_secs(60)
            )
        );
        assert_eq!(q.quantile, Some(0.95));
        let defaults = metrics_query(&params("service=a"), now(), false).unwrap();
        assert_eq!(defaults.span_kinds, [SpanKind::Server]);
        assert_eq!(
            (defaults.lookback, defaults.step, defaults.rate_per),
            (
                Duration::from_secs(3600),
                Duration::from_secs(5),
                Duration::from_secs(600)
            )
        );
        assert_eq!(defaults.end, now());
        assert_eq!(
            metrics_query(&params("quantile=0.5"), now(), true).unwrap_err(),
            "unable to parse param 'service': please provide at least one service name"
        );
        assert!(
            metrics_query(&params("service=a"), now(), true)
                .unwrap_err()
                .starts_with("unable to parse param 'quantile'")
        );
        assert!(metrics_query(&params("service=a&spanKind=sideways"), now(), false).is_err());
    }
}
