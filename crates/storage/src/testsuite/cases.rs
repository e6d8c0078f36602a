//! The cases. Each takes a fresh, empty store.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_model::{
    DependencyLink, KeyValue, Process, RefType, Span, SpanId, SpanKind, SpanRef, Trace, TraceId,
};

use super::fixtures;
use crate::{DependencyReader, Operation, OperationQuery, SpanReader, SpanWriter, TraceQuery};

/// What a backend must implement to run the suite.
pub trait Backend: SpanWriter + SpanReader + DependencyReader {}
impl<T: SpanWriter + SpanReader + DependencyReader> Backend for T {}

/// Spans in a canonical order, so traces compare by content.
fn normalized(trace: &Trace) -> Vec<Span> {
    let mut spans = trace.spans.clone();
    spans.sort_by(|a, b| {
        (
            a.span_id,
            a.start_time,
            &a.operation_name,
            a.process.service_name.as_str(),
        )
            .cmp(&(
                b.span_id,
                b.start_time,
                &b.operation_name,
                b.process.service_name.as_str(),
            ))
    });
    spans
}

fn assert_same_trace(got: &Trace, want: &Trace, context: &str) {
    assert_eq!(
        normalized(got),
        normalized(want),
        "{context}: trace content differs"
    );
}

async fn write(store: &impl Backend, trace: &Trace) {
    store
        .write_spans(trace.spans.clone())
        .await
        .expect("write_spans");
}

fn trace_id_of(trace: &Trace) -> TraceId {
    trace.spans[0].trace_id
}

/// Every case of queries.json: load all expected fixtures, then run each query
/// and compare the set of traces returned, and their content.
pub async fn find_traces_fixture_queries(store: &impl Backend) {
    let cases = fixtures::query_cases();
    let names: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.expected.iter().map(String::as_str))
        .collect();
    for name in &names {
        write(store, &fixtures::trace(name)).await;
    }
    for case in &cases {
        let got = store.find_traces(&case.query).await.expect(&case.caption);
        let want: Vec<Trace> = case.expected.iter().map(|n| fixtures::trace(n)).collect();
        let got_ids: BTreeSet<TraceId> = got.iter().map(trace_id_of).collect();
        let want_ids: BTreeSet<TraceId> = want.iter().map(trace_id_of).collect();
        assert_eq!(got_ids, want_ids, "query {:?}: wrong traces", case.caption);
        for w in &want {
            let g = got
                .iter()
                .find(|g| trace_id_of(g) == trace_id_of(w))
                .expect("found above");
            assert_same_trace(g, w, &case.caption);
        }
    }
}

pub async fn find_trace_ids_agree_with_find_traces(store: &impl Backend) {
    let cases = fixtures::query_cases();
    for case in &cases {
        for name in &case.expected {
            write(store, &fixtures::trace(name)).await;
        }
    }
    for case in &cases {
        let traces = store.find_traces(&case.query).await.expect("find_traces");
        let ids = store
            .find_trace_ids(&case.query)
            .await
            .expect("find_trace_ids");
        assert_eq!(
            ids,
            traces.iter().map(trace_id_of).collect::<Vec<_>>(),
            "{}",
            case.caption
        );
    }
}

pub async fn get_trace_returns_every_fixture_trace(store: &impl Backend) {
    let names = [
        "example_trace",
        "span_tags_trace",
        "log_tags_trace",
        "opname_maxdur_trace",
    ];
    let traces: Vec<Trace> = names.iter().map(|n| fixtures::trace(n)).collect();
    for t in &traces {
        write(store, t).await;
    }
    for (name, want) in names.iter().zip(&traces) {
        let got = store.get_trace(trace_id_of(want)).await.expect("get_trace");
        let got = got.unwrap_or_else(|| panic!("{name} not found by id"));
        assert_same_trace(&got, want, name);
    }
}

pub async fn get_trace_of_unknown_id_is_none(store: &impl Backend) {
    write(store, &fixtures::trace("example_trace")).await;
    let got = store
        .get_trace(TraceId(0xdead_beef))
        .await
        .expect("get_trace");
    assert!(got.is_none(), "unknown trace id returned {got:?}");
}

pub async fn get_services_lists_every_service(store: &impl Backend) {
    write(store, &fixtures::trace("example_trace")).await;
    let services = store.get_services().await.expect("get_services");
    assert_eq!(
        services,
        [
            "example-service-1",
            "example-service-2",
            "example-service-3"
        ]
    );
}

pub async fn get_operations_filters_by_kind(store: &impl Backend) {
    write(store, &fixtures::trace("example_trace")).await;
    let ops = |kind| OperationQuery {
        service_name: "example-service-1".into(),
        span_kind: kind,
    };
    let op = |name: &str, span_kind| Operation {
        name: name.into(),
        span_kind,
    };
    assert_eq!(
        store.get_operations(&ops(None)).await.unwrap(),
        vec![
            op("example-operation-1", SpanKind::Unspecified),
            op("example-operation-3", SpanKind::Server),
            op("example-operation-4", SpanKind::Client),
        ]
    );
    assert_eq!(
        store
            .get_operations(&ops(Some(SpanKind::Server)))
            .await
            .unwrap(),
        vec![op("example-operation-3", SpanKind::Server)]
    );
    assert_eq!(
        store
            .get_operations(&ops(Some(SpanKind::Producer)))
            .await
            .unwrap(),
        vec![]
    );
    let unknown = OperationQuery {
        service_name: "no-such-service".into(),
        span_kind: None,
    };
    assert_eq!(store.get_operations(&unknown).await.unwrap(), vec![]);
}

/// Jaeger's large-trace case: the example trace's spans repeated under new
/// span ids to 10,008 spans, written in several batches.
pub async fn large_trace_is_returned_whole(store: &impl Backend) {
    let example = fixtures::trace("example_trace");
    let spans: Vec<Span> = (0..10_008u64)
        .map(|i| {
            let mut s = example.spans[i as usize % example.spans.len()].clone();
            s.span_id = SpanId(i + 1);
            s
        })
        .collect();
    for chunk in spans.chunks(1_000) {
        store.write_spans(chunk.to_vec()).await.expect("write");
    }
    let got = store
        .get_trace(spans[0].trace_id)
        .await
        .unwrap()
        .expect("large trace");
    assert_eq!(got.spans.len(), 10_008);
    assert_same_trace(
        &got,
        &Trace {
            spans,
            warnings: vec![],
        },
        "large trace",
    );
}

fn span(trace: u128, id: u64, service: &str, op: &str, start: SystemTime) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: op.into(),
        references: vec![],
        flags: 1,
        start_time: start,
        duration: Duration::from_millis(5),
        tags: vec![],
        logs: vec![],
        process: Arc::new(Process {
            service_name: service.into(),
            tags: vec![],
        }),
        warnings: vec![],
    }
}

fn hours_ago(h: u64) -> SystemTime {
    // whole seconds, so every backend can store the time exactly
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now - h * 3600)
}

/// Zipkin-style shared spans: client and server halves carry one span id.
pub async fn duplicate_span_ids_are_kept(store: &impl Backend) {
    let mut client = span(0x77, 1, "frontend", "GET /", hours_ago(1));
    client.tags.push(KeyValue::string("span.kind", "client"));
    let mut server = span(0x77, 1, "backend", "GET /", hours_ago(1));
    server.tags.push(KeyValue::string("span.kind", "server"));
    store.write_spans(vec![client.clone()]).await.unwrap();
    store.write_spans(vec![server.clone()]).await.unwrap();
    let got = store
        .get_trace(TraceId(0x77))
        .await
        .unwrap()
        .expect("trace");
    assert_same_trace(
        &got,
        &Trace {
            spans: vec![client, server],
            warnings: vec![],
        },
        "shared ids",
    );
}

/// At-least-once delivery re-sends spans; readers return each span once.
pub async fn exact_duplicate_spans_are_returned_once(store: &impl Backend) {
    let a = span(0x78, 1, "svc", "op", hours_ago(1));
    let b = span(0x78, 2, "svc", "op", hours_ago(1));
    store.write_spans(vec![a.clone(), b.clone()]).await.unwrap();
    store.write_spans(vec![a.clone()]).await.unwrap();
    let got = store
        .get_trace(TraceId(0x78))
        .await
        .unwrap()
        .expect("trace");
    assert_same_trace(
        &got,
        &Trace {
            spans: vec![a, b],
            warnings: vec![],
        },
        "redelivered",
    );
    let q = query("svc", hours_ago(2), hours_ago(0));
    let found = store.find_traces(&q).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].spans.len(), 2);
}

fn query(service: &str, min: SystemTime, max: SystemTime) -> TraceQuery {
    TraceQuery {
        service_name: service.into(),
        operation_name: None,
        tags: vec![],
        start_time_min: min,
        start_time_max: max,
        duration_min: None,
        duration_max: None,
        num_traces: 0,
    }
}

/// The limit counts traces, and the newest traces win.
pub async fn limit_keeps_the_newest_traces(store: &impl Backend) {
    for (id, age) in [(0x101, 3), (0x102, 1), (0x103, 2)] {
        // two spans per trace, so a limit counted in spans would show
        let spans = vec![
            span(id, 1, "limit-svc", "op", hours_ago(age)),
            span(id, 2, "limit-svc", "op", hours_ago(age)),
        ];
        store.write_spans(spans).await.unwrap();
    }
    let mut q = query("limit-svc", hours_ago(4), hours_ago(0));
    q.num_traces = 2;
    let ids = store.find_trace_ids(&q).await.unwrap();
    assert_eq!(ids, vec![TraceId(0x102), TraceId(0x103)]);
    let traces = store.find_traces(&q).await.unwrap();
    assert_eq!(
        traces.iter().map(|t| t.spans.len()).collect::<Vec<_>>(),
        vec![2, 2]
    );
}

pub async fn dependencies_follow_child_of_across_services(store: &impl Backend) {
    let child_of = |parent: &Span| SpanRef {
        trace_id: parent.trace_id,
        span_id: parent.span_id,
        ref_type: RefType::ChildOf,
    };
    let a = span(0x201, 1, "dep-a", "root", hours_ago(1));
    let mut b = span(0x201, 2, "dep-b", "call", hours_ago(1));
    b.references.push(child_of(&a));
    let mut c = span(0x201, 3, "dep-c", "call", hours_ago(1));
    c.references.push(child_of(&b));
    let mut b_local = span(0x201, 4, "dep-b", "local", hours_ago(1));
    b_local.references.push(child_of(&b));
    let mut follows = span(0x201, 5, "dep-d", "async", hours_ago(1));
    follows.references.push(SpanRef {
        ref_type: RefType::FollowsFrom,
        ..child_of(&a)
    });
    let mut b2 = span(0x202, 2, "dep-b", "call", hours_ago(1));
    b2.references.push(SpanRef {
        trace_id: TraceId(0x202),
        ..child_of(&a)
    });
    let a2 = span(0x202, 1, "dep-a", "root", hours_ago(1));
    let mut old = span(0x203, 2, "dep-old", "call", hours_ago(30));
    old.references.push(SpanRef {
        trace_id: TraceId(0x203),
        ..child_of(&a)
    });
    let old_parent = span(0x203, 1, "dep-a", "root", hours_ago(30));
    store
        .write_spans(vec![a, b, c, b_local, follows, a2, b2, old, old_parent])
        .await
        .unwrap();

    let links = store
        .get_dependencies(SystemTime::now(), Duration::from_secs(24 * 3600))
        .await;
    let link = |p: &str, c: &str, n| DependencyLink {
        parent: p.into(),
        child: c.into(),
        call_count: n,
        source: String::new(),
    };
    assert_eq!(
        links.unwrap(),
        vec![link("dep-a", "dep-b", 2), link("dep-b", "dep-c", 1)]
    );
}

/// For backends whose links a dependencies job writes: links written for
/// two moments are read back for windows holding one or both, summed.
pub async fn dependencies_written_by_a_job_are_read_and_summed(
    store: &(impl DependencyReader + crate::DependencyWriter),
) {
    let link = |parent: &str, child: &str, n| DependencyLink {
        parent: parent.into(),
        child: child.into(),
        call_count: n,
        source: "jaeger".into(),
    };
    let now = SystemTime::now();
    store
        .write_dependencies(now - Duration::from_secs(7200), &[link("a", "b", 2)])
        .await
        .unwrap();
    store
        .write_dependencies(now, &[link("a", "b", 3), link("b", "c", 1)])
        .await
        .unwrap();
    let day = store
        .get_dependencies(now + Duration::from_secs(1), Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(day, [link("a", "b", 5), link("b", "c", 1)]);
    let hour = store
        .get_dependencies(now + Duration::from_secs(1), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(hour, [link("a", "b", 3), link("b", "c", 1)]);
}

/// A trace archived from `primary` is read back from the archive by id, whole.
pub async fn archived_traces_are_read_back_by_id(primary: &impl Backend, archive: &crate::Archive) {
    let trace = fixtures::trace("example_trace");
    let id = trace.spans[0].trace_id;
    primary.write_spans(trace.spans.clone()).await.unwrap();
    assert!(archive.archive(primary, id).await.unwrap());
    let back = archive
        .reader
        .get_trace(id)
        .await
        .unwrap()
        .expect("archived");
    assert_eq!(normalized(&back), normalized(&trace));
    let unknown = spoor_model::TraceId(0xdead_beef);
    assert!(
        !archive.archive(primary, unknown).await.unwrap(),
        "nothing to archive"
    );
}
