//! Search bodies in Jaeger's shape, and the readers of their answers.
//! Pure functions: the shapes are unit-tested here without a server.
use serde_json::{Value as Json, json};
use spoor_model::time::unix_micros;
use spoor_model::{SpanKind, TraceId};
use spoor_storage::TraceQuery;

const TRACE_IDS_AGG: &str = "traceIDs";
const SERVICES_AGG: &str = "distinct_services";
const OPERATIONS_AGG: &str = "distinct_operations";
const KINDS_AGG: &str = "kinds";

/// Matches `key=value` (value as a regular expression, as Jaeger does) in
/// span tags, process tags or log fields, nested or written as fields.
pub fn tag_query(key: &str, value: &str, dot_replacement: &str) -> Json {
    let field = key.replace('.', dot_replacement);
    let as_field = |path: String| json!({"bool": {"must": {"regexp": {path: {"value": value}}}}});
    let nested = |path: &str| {
        json!({"nested": {
            "path": path,
            "query": {"bool": {"must": [
                {"match": {format!("{path}.key"): {"query": key}}},
                {"regexp": {format!("{path}.value"): {"value": value}}},
            ]}},
        }})
    };
    json!({"bool": {"should": [
        as_field(format!("tag.{field}")),
        as_field(format!("process.tag.{field}")),
        nested("tags"),
        nested("process.tags"),
        nested("logs.fields"),
    ]}})
}

/// The conditions one span must meet for its trace to be found.
fn span_conditions(q: &TraceQuery, dot_replacement: &str) -> Json {
    let mut must = vec![json!({"term": {"process.serviceName": q.service_name}})];
    if let Some(op) = &q.operation_name {
        must.push(json!({"term": {"operationName": op}}));
    }
    let min_us = unix_micros(q.start_time_min);
    let max_us = unix_micros(q.start_time_max);
    // the millisecond field is indexed as a date: cheap to range over; the
    // exact microsecond bounds follow on `startTime`
    must.push(
        json!({"range": {"startTimeMillis": {"gte": min_us / 1000, "lte": max_us / 1000 + 1}}}),
    );
    must.push(json!({"range": {"startTime": {"gte": min_us, "lte": max_us}}}));
    if q.duration_min.is_some() || q.duration_max.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(d) = q.duration_min {
            range.insert("gte".into(), json!(d.as_micros() as u64));
        }
        if let Some(d) = q.duration_max {
            range.insert("lte".into(), json!(d.as_micros() as u64));
        }
        must.push(json!({"range": {"duration": range}}));
    }
    for (k, v) in &q.tags {
        must.push(tag_query(k, v, dot_replacement));
    }
    json!({"bool": {"must": must}})
}

/// Finds the ids of the `limit` traces with the newest matching spans.
pub fn find_trace_ids(q: &TraceQuery, dot_replacement: &str) -> Json {
    json!({
        "size": 0,
        "query": span_conditions(q, dot_replacement),
        "aggs": {TRACE_IDS_AGG: {
            "terms": {"field": "traceID", "size": q.limit(), "order": {"startTime": "desc"}},
            "aggs": {"startTime": {"max": {"field": "startTime"}}},
        }},
    })
}

pub fn read_trace_ids(response: &Json) -> Result<Vec<TraceId>, String> {
    buckets(response, TRACE_IDS_AGG)?
        .iter()
        .map(|b| {
            let key = b["key"].as_str().ok_or("trace id bucket without a key")?;
            key.parse()
                .map_err(|e| format!("trace id {key:?} in the index: {e}"))
        })
        .collect()
}

/// The trace id as Jaeger before 1.14 wrote 128-bit ids: the high half
/// without leading zeros. Same as the current form for 64-bit ids.
fn legacy_trace_id(id: TraceId) -> String {
    if id.high() == 0 {
        id.to_string()
    } else {
        format!("{:x}{:016x}", id.high(), id.low())
    }
}

/// One page of one trace's spans, in a stable order for `search_after`.
pub fn trace_page(id: TraceId, page_size: usize, search_after: Option<&Json>) -> Json {
    let current = id.to_string();
    let legacy = legacy_trace_id(id);
    let query = if legacy == current {
        json!({"term": {"traceID": current}})
    } else {
        json!({"bool": {"should": [
            {"term": {"traceID": current}},
            {"term": {"traceID": legacy}},
        ]}})
    };
    let mut body = json!({
        "query": query,
        "size": page_size,
        "sort": [{"startTime": "asc"}, {"spanID": "asc"}],
        "track_total_hits": true,
    });
    if let Some(after) = search_after {
        body["search_after"] = after.clone();
    }
    body
}

pub fn services(size: usize) -> Json {
    json!({"size": 0, "aggs": {SERVICES_AGG: {"terms": {"field": "serviceName", "size": size}}}})
}

pub fn read_services(response: &Json) -> Result<Vec<String>, String> {
    keys(buckets(response, SERVICES_AGG)?)
}

pub fn operations(service: &str, kind: Option<SpanKind>, size: usize) -> Json {
    let mut must = vec![json!({"term": {"serviceName": service}})];
    if let Some(kind) = kind {
        must.push(json!({"term": {"spanKind": kind.as_str()}}));
    }
    json!({
        "size": 0,
        "query": {"bool": {"must": must}},
        "aggs": {OPERATIONS_AGG: {
            "terms": {"field": "operationName", "size": size},
            "aggs": {KINDS_AGG: {"terms": {"field": "spanKind", "missing": "", "size": 8}}},
        }},
    })
}

pub fn read_operations(response: &Json) -> Result<Vec<(String, SpanKind)>, String> {
    let mut out = Vec::new();
    for op in buckets(response, OPERATIONS_AGG)? {
        let name = op["key"].as_str().ok_or("operation bucket without a key")?;
        let kinds = op[KINDS_AGG]["buckets"]
            .as_array()
            .ok_or("operation bucket without span kinds")?;
        for kind in keys(kinds)? {
            out.push((name.to_string(), SpanKind::parse(&kind)));
        }
    }
    Ok(out)
}

fn buckets<'a>(response: &'a Json, agg: &str) -> Result<&'a Vec<Json>, String> {
    response["aggregations"][agg]["buckets"]
        .as_array()
        .ok_or_else(|| format!("search answer without the {agg} aggregation"))
}

fn keys(buckets: &[Json]) -> Result<Vec<String>, String> {
    buckets
        .iter()
        .map(|b| {
            b["key"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| "bucket without a text key".to_string())
        })
        .collect()
}

/// Dependency documents whose timestamp falls in the window.
pub fn dependencies(start: &str, end: &str, size: usize) -> Json {
    json!({
        "size": size,
        "query": {"range": {"timestamp": {"gte": start, "lte": end}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn jaegers(name: &str) -> Json {
        let path = format!(
            "{}/../../testdata/elasticsearch/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn tag_queries_are_jaegers() {
        assert_eq!(tag_query("bat.foo", "spook", "@"), jaegers("query_01.json"));
        assert_eq!(tag_query("bat.foo", "spo.*", "@"), jaegers("query_02.json"));
        assert_eq!(
            tag_query("bat.foo", r"spo\*", "@"),
            jaegers("query_03.json")
        );
    }

    fn query() -> TraceQuery {
        TraceQuery {
            service_name: "svc".into(),
            operation_name: Some("op".into()),
            tags: vec![("http.status_code".into(), "500".into())],
            start_time_min: UNIX_EPOCH + Duration::from_micros(1_000_500),
            start_time_max: UNIX_EPOCH + Duration::from_micros(2_000_700),
            duration_min: Some(Duration::from_millis(3)),
            duration_max: None,
            num_traces: 7,
        }
    }

    #[test]
    fn trace_id_search_filters_spans_and_aggregates_newest_first() {
        let body = find_trace_ids(&query(), "@");
        assert_eq!(body["size"], 0);
        let must = body["query"]["bool"]["must"].as_array().unwrap();
        assert_eq!(must[0], json!({"term": {"process.serviceName": "svc"}}));
        assert_eq!(must[1], json!({"term": {"operationName": "op"}}));
        assert_eq!(
            must[2],
            json!({"range": {"startTimeMillis": {"gte": 1000, "lte": 2001}}})
        );
        assert_eq!(
            must[3],
            json!({"range": {"startTime": {"gte": 1_000_500, "lte": 2_000_700}}})
        );
        assert_eq!(must[4], json!({"range": {"duration": {"gte": 3000}}}));
        assert_eq!(must[5], tag_query("http.status_code", "500", "@"));
        assert_eq!(must.len(), 6);
        let terms = &body["aggs"]["traceIDs"]["terms"];
        assert_eq!(terms["size"], 7);
        assert_eq!(terms["order"], json!({"startTime": "desc"}));
        assert_eq!(
            body["aggs"]["traceIDs"]["aggs"]["startTime"],
            json!({"max": {"field": "startTime"}})
        );
    }

    #[test]
    fn minimal_query_has_service_and_time_only() {
        let q = TraceQuery {
            operation_name: None,
            tags: vec![],
            duration_min: None,
            num_traces: 0,
            ..query()
        };
        let body = find_trace_ids(&q, "@");
        assert_eq!(body["query"]["bool"]["must"].as_array().unwrap().len(), 3);
        assert_eq!(body["aggs"]["traceIDs"]["terms"]["size"], 100);
    }

    #[test]
    fn trace_ids_are_read_from_buckets() {
        let answer = json!({"aggregations": {"traceIDs": {"buckets": [
            {"key": "00000000000000ff", "doc_count": 3},
            {"key": "1", "doc_count": 1},
        ]}}});
        assert_eq!(
            read_trace_ids(&answer).unwrap(),
            [TraceId(0xff), TraceId(1)]
        );
        assert!(read_trace_ids(&json!({})).is_err());
        let bad = json!({"aggregations": {"traceIDs": {"buckets": [{"key": "zz"}]}}});
        assert!(read_trace_ids(&bad).unwrap_err().contains("zz"));
    }

    #[test]
    fn trace_pages_also_match_the_legacy_id_form() {
        let short = trace_page(TraceId(0xab), 10, None);
        assert_eq!(
            short["query"],
            json!({"term": {"traceID": "00000000000000ab"}})
        );
        let long = trace_page(TraceId::new(0x1, 0x2), 10, Some(&json!([5, "x"])));
        assert_eq!(
            long["query"]["bool"]["should"][1],
            json!({"term": {"traceID": "10000000000000002"}})
        );
        assert_eq!(
            long["query"]["bool"]["should"][0],
            json!({"term": {"traceID": "00000000000000010000000000000002"}})
        );
        assert_eq!(long["search_after"], json!([5, "x"]));
        assert_eq!(long["size"], 10);
        assert_eq!(long["track_total_hits"], true);
    }

    #[test]
    fn operations_carry_their_span_kinds() {
        let body = operations("svc", Some(SpanKind::Server), 50);
        assert_eq!(
            body["query"]["bool"]["must"][1],
            json!({"term": {"spanKind": "server"}})
        );
        let answer = json!({"aggregations": {"distinct_operations": {"buckets": [
            {"key": "GET", "kinds": {"buckets": [{"key": "server"}, {"key": "client"}]}},
            {"key": "legacy", "kinds": {"buckets": [{"key": ""}]}},
        ]}}});
        assert_eq!(
            read_operations(&answer).unwrap(),
            [
                ("GET".to_string(), SpanKind::Server),
                ("GET".to_string(), SpanKind::Client),
                ("legacy".to_string(), SpanKind::Unspecified),
            ]
        );
    }

    #[test]
    fn services_are_read_from_buckets() {
        let body = services(10_000);
        assert_eq!(body["aggs"]["distinct_services"]["terms"]["size"], 10_000);
        let answer = json!({"aggregations": {"distinct_services": {"buckets": [{"key": "a"}, {"key": "b"}]}}});
        assert_eq!(read_services(&answer).unwrap(), ["a", "b"]);
    }
}
