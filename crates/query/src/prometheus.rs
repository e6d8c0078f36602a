//! RED metrics read from Prometheus, for a query process apart from the
//! collectors (`--metrics-storage.type=prometheus`, Jaeger's option): the
//! series Spoor's collectors export (and the OpenTelemetry collector's
//! spanmetrics connector writes), `<namespace>_calls_total` and
//! `<namespace>_duration_milliseconds_bucket`, queried with the PromQL
//! Jaeger's Prometheus metrics reader sends.
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Args;
use spoor_model::SpanKind;
use spoor_query_params::MetricsQuery;
use spoor_red::{Figure, Points};

#[derive(Args, Clone, Debug)]
pub struct PrometheusOptions {
    /// The Prometheus (or compatible) server RED metrics are read from.
    #[arg(
        id = "prometheus.server-url",
        long = "prometheus.server-url",
        env = "PROMETHEUS_SERVER_URL",
        default_value = "http://localhost:9090"
    )]
    pub server_url: String,
    /// Longest a query to Prometheus may take.
    #[arg(id = "prometheus.connect-timeout", long = "prometheus.connect-timeout", env = "PROMETHEUS_CONNECT_TIMEOUT", default_value = "30s", value_parser = spoor_model::parse_go_duration)]
    pub timeout: Duration,
    /// File holding a bearer token sent with every query.
    #[arg(
        id = "prometheus.token-file",
        long = "prometheus.token-file",
        env = "PROMETHEUS_TOKEN_FILE"
    )]
    pub token_file: Option<PathBuf>,
    /// The prefix of the series' names.
    #[arg(
        id = "prometheus.query.namespace",
        long = "prometheus.query.namespace",
        env = "PROMETHEUS_QUERY_NAMESPACE",
        default_value = "traces_span_metrics"
    )]
    pub namespace: String,
}

/// Most bytes one Prometheus answer may have.
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// Why RED metrics could not be read; clients see a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("reading the token file {path}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("asking prometheus")]
    Request(#[from] reqwest::Error),
    #[error("prometheus answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("prometheus answered more than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("prometheus answered something that is not a query_range matrix")]
    Answer(#[source] Option<serde_json::Error>),
}

pub struct PrometheusReader {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    namespace: String,
}

impl PrometheusReader {
    pub fn new(options: &PrometheusOptions) -> Result<PrometheusReader, PrometheusError> {
        let token = match &options.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| PrometheusError::TokenFile {
                        path: path.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(PrometheusReader {
            client: reqwest::Client::builder()
                .timeout(options.timeout)
                .build()?,
            url: options.server_url.trim_end_matches('/').to_string(),
            token,
            namespace: options.namespace.clone(),
        })
    }

    /// The series of `figure` for `q`, as the in-process RED metrics give them.
    pub async fn query(
        &self,
        q: &MetricsQuery,
        figure: Figure,
    ) -> Result<Vec<Points>, PrometheusError> {
        let promql = promql(&self.namespace, q, figure);
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
                .to_string()
        };
        let start = q
            .end
            .checked_sub(q.lookback)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let step = format!("{}ms", q.step.as_millis().max(1));
        let mut request = self
            .client
            .get(format!("{}/api/v1/query_range", self.url))
            .query(&[
                ("query", promql.as_str()),
                ("start", &secs(start)),
                ("end", &secs(q.end)),
                ("step", &step),
            ]);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(PrometheusError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(PrometheusError::Status {
                status: status.as_u16(),
                body,
            });
        }
        points(&body, q.group_by_operation)
    }
}

fn otel_kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
    }
}

/// A PromQL string literal of a regular expression matching `values` exactly.
fn alternatives(values: impl Iterator<Item = String>) -> String {
    const SPECIAL: &str = r".+*?()|[]{}^$\";
    let escaped: Vec<String> = values
        .map(|v| {
            let mut out = String::new();
            for c in v.chars() {
                if SPECIAL.contains(c) {
                    out.push_str("\\\\");
                } else if c == '"' {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        })
        .collect();
    escaped.join("|")
}

/// The query Jaeger's Prometheus reader sends for `figure`.
pub(crate) fn promql(namespace: &str, q: &MetricsQuery, figure: Figure) -> String {
    let services = alternatives(q.services.iter().cloned());
    let kinds = alternatives(q.span_kinds.iter().map(|k| otel_kind(*k).to_string()));
    let filter =
        |extra: &str| format!(r#"service_name =~ "{services}", span_kind =~ "{kinds}"{extra}"#);
    let window = format!("{}ms", q.rate_per.as_millis().max(1));
    let by = if q.group_by_operation {
        "service_name,span_name"
    } else {
        "service_name"
    };
    let calls = format!("{namespace}_calls_total");
    match figure {
        Figure::Latency(quantile) => format!(
            "histogram_quantile({quantile}, sum(rate({namespace}_duration_milliseconds_bucket{{{}}}[{window}])) by ({by},le))",
            filter("")
        ),
        Figure::CallRate => format!("sum(rate({calls}{{{}}}[{window}])) by ({by})", filter("")),
        Figure::ErrorRate => format!(
            "sum(rate({calls}{{{}}}[{window}])) by ({by}) / sum(rate({calls}{{{}}}[{window}])) by ({by})",
            filter(r#", status_code = "STATUS_CODE_ERROR""#),
            filter("")
        ),
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
}

#[derive(serde::Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(serde::Deserialize)]
struct Series {
    metric: std::collections::HashMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A query_range matrix as series of points; values that are not numbers
/// (NaN where a window saw no calls) are left out, as Jaeger leaves them.
pub(crate) fn points(body: &[u8], by_operation: bool) -> Result<Vec<Points>, PrometheusError> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| PrometheusError::Answer(Some(e)))?;
    let data = match answer.data {
        Some(d) if answer.status == "success" && d.result_type == "matrix" => d,
        _ => return Err(PrometheusError::Answer(None)),
    };
    Ok(data
        .result
        .into_iter()
        .map(|s| Points {
            service: s.metric.get("service_name").cloned().unwrap_or_default(),
            operation: by_operation.then(|| s.metric.get("span_name").cloned().unwrap_or_default()),
            points: s
                .values
                .into_iter()
                .filter_map(|(t, v)| {
                    let v: f64 = v.parse().ok().filter(|v: &f64| v.is_finite())?;
                    Some((
                        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0)),
                        v,
                    ))
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(group_by_operation: bool) -> MetricsQuery {
        MetricsQuery {
            services: vec!["frontend".into(), "a.b".into()],
            group_by_operation,
            span_kinds: vec![SpanKind::Server, SpanKind::Client],
            end: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            lookback: Duration::from_secs(3600),
            step: Duration::from_secs(60),
            rate_per: Duration::from_secs(600),
            quantile: Some(0.95),
        }
    }

    #[test]
    fn the_queries_are_jaegers_on_the_series_spoor_exports() {
        let ns = "traces_span_metrics";
        let filter =
            r#"service_name =~ "frontend|a\\.b", span_kind =~ "SPAN_KIND_SERVER|SPAN_KIND_CLIENT""#;
        assert_eq!(
            promql(ns, &query(false), Figure::Latency(0.95)),
            format!(
                "histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{{{filter}}}[600000ms])) by (service_name,le))"
            )
        );
        assert_eq!(
            promql(ns, &query(true), Figure::CallRate),
            format!(
                "sum(rate(traces_span_metrics_calls_total{{{filter}}}[600000ms])) by (service_name,span_name)"
            )
        );
        assert_eq!(
            promql(ns, &query(false), Figure::ErrorRate),
            format!(
                "sum(rate(traces_span_metrics_calls_total{{{filter}, status_code = \"STATUS_CODE_ERROR\"}}[600000ms])) by (service_name) \
                 / sum(rate(traces_span_metrics_calls_total{{{filter}}}[600000ms])) by (service_name)"
            )
        );
    }

    #[test]
    fn a_matrix_becomes_points_and_what_is_not_a_matrix_is_an_error() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"service_name":"frontend","span_name":"GET /"},"values":[[1700000000,"0.5"],[1700000060,"NaN"],[1700000120,"2"]]}]}}"#;
        let series = points(body, true).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].service, "frontend");
        assert_eq!(series[0].operation.as_deref(), Some("GET /"));
        let values: Vec<f64> = series[0].points.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [0.5, 2.0]);
        assert_eq!(
            series[0].points[0].0,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(points(br#"{"status":"error","errorType":"bad_data"}"#, false).is_err());
        assert!(
            points(
                br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                false
            )
            .is_err()
        );
        assert!(points(b"<html>", false).is_err());
    }

    /// The reader against a small HTTP endpoint answering `query_range` as
    /// Prometheus does (a real server is not installable here); what it
    /// checks is the request the reader sends and the reading of the answer.
    #[tokio::test]
    async fn the_reader_asks_query_range_with_its_token_and_reads_the_matrix() {
        use std::sync::{Arc, Mutex};
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let app = {
            let seen = Arc::clone(&seen);
            axum::Router::new().route(
                "/api/v1/query_range",
                axum::routing::get(
                    move |headers: axum::http::HeaderMap,
                          axum::extract::Query(p): axum::extract::Query<Vec<(String, String)>>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let mut seen = seen.lock().unwrap();
                            seen.extend(p);
                            let auth = headers["authorization"].to_str().unwrap().to_string();
                            seen.push(("authorization".into(), auth));
                            axum::Json(serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
                                {"metric": {"service_name": "frontend"}, "values": [[1_700_000_000, "4.5"]]}]}}))
                        }
                    },
                ),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let token = std::env::temp_dir().join(format!("spoor-prom-token-{}", std::process::id()));
        std::fs::write(&token, "s3cret\n").unwrap();
        let reader = PrometheusReader::new(&PrometheusOptions {
            server_url: format!("http://{addr}/"),
            timeout: Duration::from_secs(5),
            token_file: Some(token.clone()),
            namespace: "traces_span_metrics".into(),
        })
        .unwrap();
        std::fs::remove_file(&token).unwrap();
        let series = reader.query(&query(false), Figure::CallRate).await.unwrap();
        assert_eq!(series[0].service, "frontend");
        assert_eq!(series[0].points[0].1, 4.5);
        let seen = seen.lock().unwrap();
        let get = |k: &str| {
            seen.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("query"),
            promql("traces_span_metrics", &query(false), Figure::CallRate)
        );
        assert_eq!(get("start"), "1699996400");
        assert_eq!(get("end"), "1700000000");
        assert_eq!(get("step"), "60000ms");
        assert_eq!(get("authorization"), "Bearer s3cret");
    }
}
