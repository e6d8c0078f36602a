//! One table of TraceQL queries and the traces each must find, run on the
//! memory store and on the embedded (blocks) store, with every span in its
//! head and with every span in Parquet blocks: the store's search narrows the
//! candidates, the query decides, and every store must give the same answer.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use spoor_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use spoor_query::search::{Search, search};
use spoor_storage::{SpanReader, SpanWriter};
use spoor_storage_embedded::{BlockOptions, BlockStore};
use spoor_storage_memory::{MemoryConfig, MemoryStore};

/// HotROD requests: frontend → customer → mysql and frontend → driver →
/// redis, in three variants: all well (1), a redis call failed (2), a slow
/// mysql query (3). Trace 4 is a lone frontend span.
fn fixture() -> Vec<Span> {
    let start = SystemTime::now() - Duration::from_secs(60);
    let process = |service: &str| {
        Arc::new(Process {
            service_name: service.into(),
            tags: vec![KeyValue::string("hostname", format!("{service}-host"))],
        })
    };
    let mut spans = Vec::new();
    for trace in 1..=4u128 {
        let mut add = |id: u64,
                       parent: Option<u64>,
                       service: &str,
                       name: &str,
                       ms: u64,
                       tags: Vec<KeyValue>| {
            spans.push(Span {
                trace_id: TraceId(trace),
                span_id: SpanId(id),
                operation_name: name.into(),
                references: parent
                    .map(|p| SpanRef {
                        trace_id: TraceId(trace),
                        span_id: SpanId(p),
                        ref_type: RefType::ChildOf,
                    })
                    .into_iter()
                    .collect(),
                flags: 1,
                start_time: start + Duration::from_millis(trace as u64),
                duration: Duration::from_millis(ms),
                tags,
                logs: vec![],
                process: process(service),
                warnings: vec![],
            })
        };
        let kind = |k: &str| KeyValue::string("span.kind", k);
        let code = if trace == 2 { 500 } else { 200 };
        add(
            1,
            None,
            "frontend",
            "HTTP GET /dispatch",
            700,
            vec![
                kind("server"),
                KeyValue::new("http.status_code", Value::Int64(code)),
            ],
        );
        if trace == 4 {
            continue;
        }
        add(
            2,
            Some(1),
            "customer",
            "HTTP GET /customer",
            300,
            vec![kind("server")],
        );
        let sql_ms = if trace == 3 { 900 } else { 250 };
        add(
            3,
            Some(2),
            "mysql",
            "SQL SELECT",
            sql_ms,
            vec![
                kind("client"),
                KeyValue::string("sql.query", "select * from customer where id = ?"),
            ],
        );
        add(
            4,
            Some(1),
            "driver",
            "FindNearest",
            200,
            vec![kind("server")],
        );
        for (i, ms) in [(5, 10), (6, 40), (7, 12)] {
            let mut tags = vec![kind("client")];
            if trace == 2 && i == 6 {
                tags.push(KeyValue::new("error", Value::Bool(true)));
            }
            add(i, Some(4), "redis", "GetDriver", ms, tags);
        }
    }
    spans
}

const TABLE: &[(&str, &[u128])] = &[
    // exact integer and boolean values, pushed down to the store's tag search
    (
        r#"{ resource.service.name = "frontend" && span.http.status_code = 500 }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "redis" && span.error = true }"#,
        &[2],
    ),
    (r#"{ resource.service.name = "frontend" }"#, &[1, 2, 3, 4]),
    (
        r#"{ resource.service.name = "frontend" && span.http.status_code >= 500 }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "frontend" && span.http.status_code != 500 }"#,
        &[1, 3, 4],
    ),
    (
        r#"{ resource.service.name = "mysql" && duration > 500ms }"#,
        &[3],
    ),
    (
        r#"{ resource.service.name = "mysql" && .sql.query =~ "select .* from customer.*" }"#,
        &[1, 2, 3],
    ),
    (
        r#"{ resource.service.name = "redis" && status = error }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "redis" && resource.hostname = "redis-host" && kind = client }"#,
        &[1, 2, 3],
    ),
    // structural: frontend > customer > mysql, and frontend >> redis with an error
    (
        r#"{ resource.service.name = "frontend" } > { resource.service.name = "customer" } > { resource.service.name = "mysql" }"#,
        &[1, 2, 3],
    ),
    (
        r#"{ resource.service.name = "frontend" } > { resource.service.name = "mysql" }"#,
        &[],
    ),
    (
        r#"{ resource.service.name = "frontend" } >> { resource.service.name = "redis" && status = error }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "redis" && status = error } ~ { resource.service.name = "redis" }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "mysql" && duration > 500ms } && { status = error }"#,
        &[],
    ),
    (
        r#"{ resource.service.name = "mysql" && duration > 500ms } || { resource.service.name = "mysql" && status = error }"#,
        &[3],
    ),
    (
        r#"{ resource.service.name = "frontend" && !(span.http.status_code = 200) }"#,
        &[2],
    ),
    (
        r#"{ resource.service.name = "redis" } | count() = 3"#,
        &[1, 2, 3],
    ),
    (
        r#"{ resource.service.name = "redis" } | max(duration) >= 40ms | avg(duration) < 21ms"#,
        &[1, 2, 3],
    ),
    (r#"{ resource.service.name = "nobody" }"#, &[]),
];

async fn answers(reader: Arc<dyn SpanReader>, store: &str) {
    for (text, want) in TABLE {
        let query = match spoor_traceql::parse(text) {
            Ok(q) => q,
            // a query the parser refuses must be refused on every store: none in this table
            Err(e) => panic!("{text}: {e}"),
        };
        let found = search(
            &reader,
            &Search {
                query: &query,
                start: SystemTime::now() - Duration::from_secs(3600),
                end: SystemTime::now(),
                limit: 20,
                depth: 1_000,
                max_spans: 10_000,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{store}: {text}: {e}"));
        let mut got: Vec<u128> = found
            .traces
            .iter()
            .map(|(t, _)| t.spans[0].trace_id.0)
            .collect();
        got.sort();
        assert_eq!(got, *want, "{store}: {text}");
        assert!(found.complete, "{store}: {text}: every candidate read");
    }
}

#[tokio::test]
async fn the_memory_store_answers_the_table() {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }));
    store.write_spans(fixture()).await.unwrap();
    answers(store, "memory").await;
}

#[tokio::test]
async fn the_embedded_store_answers_the_table_from_its_head_and_from_blocks() {
    for in_blocks in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path(), BlockOptions::default())
            .await
            .unwrap();
        // one block a trace, so a match may need several blocks' spans
        for trace in 1..=4u128 {
            let of_trace = fixture()
                .into_iter()
                .filter(|s| s.trace_id.0 == trace)
                .collect();
            store.write_spans(of_trace).await.unwrap();
            if in_blocks {
                store.cut().await.unwrap();
            }
        }
        let stats = store.stats();
        if in_blocks {
            assert_eq!(
                (stats.blocks, stats.head_spans),
                (4, 0),
                "every span in a block"
            );
        } else {
            assert_eq!(stats.blocks, 0, "every span in the head");
        }
        answers(
            store,
            if in_blocks {
                "embedded blocks"
            } else {
                "embedded head"
            },
        )
        .await;
    }
}
