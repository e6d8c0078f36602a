use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use spoor_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, Trace, TraceId, Value};

use crate::{parse, plan};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A HotROD request: frontend → customer → mysql, frontend → driver →
/// redis (one redis call failed), as the Jaeger demo's traces are shaped.
fn hotrod() -> Trace {
    let trace_id = TraceId::new(0, 0xabc);
    let process = |service: &str| {
        Arc::new(Process {
            service_name: service.into(),
            tags: vec![KeyValue::new(
                "host.name",
                Value::String(format!("{service}-1")),
            )],
        })
    };
    let span = |id: u64,
                parent: Option<u64>,
                service: &str,
                name: &str,
                millis: u64,
                tags: Vec<KeyValue>| Span {
        trace_id,
        span_id: SpanId(id),
        operation_name: name.into(),
        references: parent
            .map(|p| {
                vec![SpanRef {
                    ref_type: RefType::ChildOf,
                    trace_id,
                    span_id: SpanId(p),
                }]
            })
            .unwrap_or_default(),
        flags: 1,
        start_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        duration: ms(millis),
        tags,
        logs: vec![],
        process: process(service),
        warnings: vec![],
    };
    let kind = |k: &str| KeyValue::new("span.kind", Value::String(k.into()));
    Trace {
        spans: vec![
            span(
                1,
                None,
                "frontend",
                "HTTP GET /dispatch",
                700,
                vec![
                    kind("server"),
                    KeyValue::new("http.status_code", Value::Int64(200)),
                ],
            ),
            span(
                2,
                Some(1),
                "customer",
                "HTTP GET /customer",
                300,
                vec![kind("server")],
            ),
            span(
                3,
                Some(2),
                "mysql",
                "SQL SELECT",
                290,
                vec![
                    kind("client"),
                    KeyValue::new("sql.query", Value::String("select * from customer".into())),
                ],
            ),
            span(
                4,
                Some(1),
                "driver",
                "FindNearest",
                200,
                vec![kind("server")],
            ),
            span(5, Some(4), "redis", "GetDriver", 10, vec![kind("client")]),
            span(
                6,
                Some(4),
                "redis",
                "GetDriver",
                40,
                vec![
                    kind("client"),
                    KeyValue::new("error", Value::Bool(true)),
                    KeyValue::new("retry.ratio", Value::Float64(0.5)),
                ],
            ),
            span(
                7,
                Some(4),
                "redis",
                "GetDriver",
                12,
                vec![
                    kind("client"),
                    KeyValue::new("otel.status_code", Value::String("OK".into())),
                ],
            ),
        ],
        warnings: vec![],
    }
}

/// The span ids a query selects on the HotROD trace.
fn selects(query: &str) -> Vec<u64> {
    let trace = hotrod();
    let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    q.matches(&trace)
        .into_iter()
        .map(|i| trace.spans[i].span_id.0)
        .collect()
}

#[test]
fn selectors_over_intrinsics_and_attributes() {
    let table: &[(&str, &[u64])] = &[
        ("{}", &[1, 2, 3, 4, 5, 6, 7]),
        (r#"{ resource.service.name = "redis" }"#, &[5, 6, 7]),
        (r#"{ name = "SQL SELECT" }"#, &[3]),
        (r#"{ name =~ "HTTP GET /.*" }"#, &[1, 2]),
        (
            r#"{ name !~ "HTTP.*" && resource.service.name != "redis" }"#,
            &[3, 4],
        ),
        ("{ status = error }", &[6]),
        ("{ status = ok }", &[7]),
        ("{ status = unset && kind = client }", &[3, 5]),
        ("{ kind = server }", &[1, 2, 4]),
        ("{ duration > 250ms }", &[1, 2, 3]),
        ("{ duration >= 300ms && duration <= 700ms }", &[1, 2]),
        ("{ duration < 12ms }", &[5]),
        ("{ span.http.status_code = 200 }", &[1]),
        (
            "{ span.http.status_code >= 200 && span.http.status_code < 300 }",
            &[1],
        ),
        ("{ .http.status_code > 199.5 }", &[1]),
        ("{ span.retry.ratio < 1 }", &[6]),
        ("{ span.error = true }", &[6]),
        ("{ span.error != nil }", &[6]),
        ("{ span.sql.query = nil && kind = client }", &[5, 6, 7]),
        (r#"{ resource.host.name = "mysql-1" }"#, &[3]),
        (r#"{ .host.name = "mysql-1" }"#, &[3]),
        (r#"{ span.host.name = "mysql-1" }"#, &[]),
        (r#"{ .sql.query =~ "select .* from customer" }"#, &[3]),
        (
            r#"{ !(resource.service.name = "redis") && kind = client }"#,
            &[3],
        ),
        (
            r#"{ resource.service.name = "mysql" || status = error }"#,
            &[3, 6],
        ),
        // a type mismatch is no match, and != holds
        (r#"{ span.http.status_code = "200" }"#, &[]),
    ];
    for (query, want) in table {
        assert_eq!(selects(query), *want, "{query}");
    }
}

#[test]
fn structural_operators_and_spanset_logic() {
    let table: &[(&str, &[u64])] = &[
        // frontend > customer > mysql: the mysql span under customer under frontend
        (
            r#"{ resource.service.name = "frontend" } > { resource.service.name = "customer" } > { resource.service.name = "mysql" }"#,
            &[3],
        ),
        (
            r#"{ resource.service.name = "frontend" } > { resource.service.name = "mysql" }"#,
            &[],
        ),
        (
            r#"{ resource.service.name = "frontend" } >> { resource.service.name = "mysql" }"#,
            &[3],
        ),
        // frontend >> redis with an error
        (
            r#"{ resource.service.name = "frontend" } >> { resource.service.name = "redis" && status = error }"#,
            &[6],
        ),
        (
            r#"{ status = error } ~ { resource.service.name = "redis" }"#,
            &[5, 7],
        ),
        (r#"{ resource.service.name = "mysql" } ~ { }"#, &[]),
        (
            r#"{ resource.service.name = "mysql" } && { status = error }"#,
            &[3, 6],
        ),
        (
            r#"{ resource.service.name = "mysql" } && { name = "nothing" }"#,
            &[],
        ),
        (
            r#"{ resource.service.name = "mysql" } || { name = "nothing" }"#,
            &[3],
        ),
        (
            r#"({ kind = server } > { kind = client }) && { status = ok }"#,
            &[3, 5, 6, 7],
        ),
    ];
    for (query, want) in table {
        assert_eq!(selects(query), *want, "{query}");
    }
}

#[test]
fn aggregates_filter_the_selected_spans() {
    let table: &[(&str, &[u64])] = &[
        (
            r#"{ resource.service.name = "redis" } | count() = 3"#,
            &[5, 6, 7],
        ),
        (r#"{ resource.service.name = "redis" } | count() > 3"#, &[]),
        (
            r#"{ resource.service.name = "redis" } | max(duration) >= 40ms"#,
            &[5, 6, 7],
        ),
        (
            r#"{ resource.service.name = "redis" } | avg(duration) < 20ms"#,
            &[],
        ),
        (
            r#"{ resource.service.name = "redis" } | avg(duration) <= 21ms | min(duration) = 10ms"#,
            &[5, 6, 7],
        ),
    ];
    for (query, want) in table {
        assert_eq!(selects(query), *want, "{query}");
    }
}

#[test]
fn every_construct_reads_back_from_its_text() {
    for query in [
        "{}",
        r#"{ name = "a \"quoted\" \\ name" && status != error }"#,
        r#"{ .a =~ "x\d+\." || !(span.b != nil) }"#,
        "{ duration >= 1.5s && kind = consumer && resource.k8s.pod-name != \"x\" }",
        "{ span.n <= -3 && span.f > 2.25 && span.b = false }",
        "{ .f = 100000000000000000000.0 && .g = 0.0000001 && .h = 2.0 && .i = -0.0 }",
        "{ duration > 0.1ms && duration < 18446744073709551615ns }",
        r#"({ status = ok } >> { kind = internal }) ~ { name != "x" } || { } && { status = unset }"#,
        "{ duration < 10us } | count() >= 2 | avg(duration) > 1ms | max(duration) < 1h | min(duration) != 5ns",
    ] {
        let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let text = q.to_string();
        assert_eq!(parse(&text).unwrap(), q, "{query} wrote {text}");
    }
}

#[test]
fn long_chains_print_back_within_the_nesting_bound() {
    let chain = vec!["{ .a = 1 }"; 200].join(" && ");
    let ors = vec![".a = 1"; 200].join(" || ");
    let nots = format!("{{ {}.a = 1 }}", "!".repeat(60));
    for query in [chain, format!("{{ {ors} }}"), nots] {
        let q = parse(&query).unwrap();
        assert_eq!(parse(&q.to_string()).unwrap(), q);
    }
    // parentheses that change the reading stay
    let q = parse("{ .a = 1 } || ({ .b = 1 } || { .c = 1 }) && { .d = 1 }").unwrap();
    assert_eq!(
        q.to_string(),
        "{ .a = 1 } || ({ .b = 1 } || { .c = 1 }) && { .d = 1 }"
    );
}

#[test]
fn errors_name_the_column() {
    let table = [
        ("{ name = }", 10, "expected a value, found }"),
        (
            "{ name = \"x\" ",
            14,
            "expected }, found the end of the query",
        ),
        (
            "{ duration > 10 }",
            14,
            "duration is compared with a duration",
        ),
        ("{ duration > 10parsecs }", 14, "unknown duration unit"),
        ("{ status = boom }", 12, "unknown value \"boom\""),
        ("{ status > error }", 10, "compared with = or !="),
        ("{ colour = \"red\" }", 3, "unknown field \"colour\""),
        ("{ .a =~ \"(\" }", 9, "invalid regex"),
        ("{ .a = 1 } >", 13, "expected a span selector"),
        (
            "{ .a = 1 } | count() > 1s",
            24,
            "count() is compared with a whole number",
        ),
        ("{ .a = 1 } | sum(duration) > 1s", 14, "unknown aggregate"),
        ("{ .a = \"x }", 8, "unterminated string"),
        ("{ .a = 1 } }", 12, "unexpected }"),
        ("{ .a # 1 }", 6, "unexpected character '#'"),
    ];
    for (query, column, message) in table {
        let e = parse(query).expect_err(query);
        assert_eq!(e.column, column, "{query}: {e}");
        assert!(e.message.contains(message), "{query}: {e}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}{{}}{}", "(".repeat(200), ")".repeat(200));
    let e = parse(&deep).unwrap_err();
    assert!(e.message.contains("nested deeper than"), "{e}");
    let not = format!("{{ {}.a = 1 }}", "!".repeat(200));
    assert!(
        parse(&not)
            .unwrap_err()
            .message
            .contains("nested deeper than")
    );
    let fine = format!("{}{{}}{}", "(".repeat(20), ")".repeat(20));
    assert!(parse(&fine).is_ok());
}

#[test]
fn the_plan_pushes_down_what_one_span_of_every_match_has() {
    let p = plan(&parse(
        r#"{ resource.service.name = "frontend" && name = "HTTP GET /dispatch" && span.http.status_code = 200 && duration > 1s && duration < 5s && status = error }"#,
    ).unwrap())
    .unwrap();
    assert_eq!(p.service, "frontend");
    assert_eq!(p.operation.as_deref(), Some("HTTP GET /dispatch"));
    assert_eq!(
        p.tags,
        vec![("http.status_code".to_string(), "200".to_string())]
    );
    assert_eq!(
        (p.duration_min, p.duration_max),
        (Some(ms(1000)), Some(ms(5000)))
    );
    // a structural query: the selector that names a service
    let p = plan(
        &parse(r#"{ kind = server } >> { resource.service.name = "redis" && .x != 1 }"#).unwrap(),
    )
    .unwrap();
    assert_eq!((p.service.as_str(), p.tags.len()), ("redis", 0));
    // an alternative pushes down only a service both sides share
    let p = plan(
        &parse(
            r#"{ resource.service.name = "a" && name = "x" } || { resource.service.name = "a" }"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!((p.service.as_str(), p.operation), ("a", None));
    for unplannable in [
        "{ status = error }",
        r#"{ resource.service.name = "a" } || { resource.service.name = "b" }"#,
        r#"{ resource.service.name = "a" || name = "x" }"#,
        r#"{ resource.service.name != "a" }"#,
    ] {
        assert!(plan(&parse(unplannable).unwrap()).is_err(), "{unplannable}");
    }
}

proptest! {
    #[test]
    fn no_input_makes_the_parser_panic(input in ".{0,200}") {
        let _ = parse(&input);
    }

    #[test]
    fn no_query_of_its_tokens_makes_it_panic(parts in proptest::collection::vec(
        prop_oneof![
            Just("{"), Just("}"), Just("("), Just(")"), Just("&&"), Just("||"), Just("!"),
            Just(">"), Just(">>"), Just("~"), Just("="), Just("=~"), Just("|"), Just("count()"),
            Just("name"), Just(".a"), Just("\"x\""), Just("1"), Just("1ms"), Just("nil"), Just("error"),
        ],
        0..40,
    )) {
        if let Ok(q) = parse(&parts.join(" ")) {
            let _ = q.matches(&hotrod());
            let _ = plan(&q);
            prop_assert_eq!(parse(&q.to_string()).unwrap(), q);
        }
    }
}
