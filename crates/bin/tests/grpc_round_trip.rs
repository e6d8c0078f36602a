//! Spans posted with a real Jaeger api_v2 gRPC client come back through the
//! api_v2 QueryService, over sockets, with every field intact.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use spoor_bin::AllInOneCli;
use spoor_collector::Collector;
use spoor_proto::api_v2::collector_service_client::CollectorServiceClient;
use spoor_proto::api_v2::query_service_client::QueryServiceClient;
use spoor_proto::api_v2::{
    Batch, FindTracesRequest, GetOperationsRequest, GetServicesRequest, GetTraceRequest, KeyValue,
    PostSpansRequest, Process, Span, SpanRef, TraceQueryParameters, ValueType,
};
use spoor_query::QueryServer;
use spoor_server::Registry;
use spoor_server::shutdown::ShutdownTrigger;
use tonic::Code;

fn span(trace: u64, id: u64, op: &str, parent: Option<u64>, start: SystemTime) -> Span {
    let d = start.duration_since(UNIX_EPOCH).unwrap();
    Span {
        trace_id: [0u64.to_be_bytes(), trace.to_be_bytes()].concat(),
        span_id: id.to_be_bytes().to_vec(),
        operation_name: op.into(),
        references: parent
            .map(|p| SpanRef {
                trace_id: [0u64.to_be_bytes(), trace.to_be_bytes()].concat(),
                span_id: p.to_be_bytes().to_vec(),
                ref_type: 0,
            })
            .into_iter()
            .collect(),
        flags: 1,
        start_time: Some(prost_types::Timestamp {
            seconds: d.as_secs() as i64,
            nanos: 0,
        }),
        duration: Some(prost_types::Duration {
            seconds: 0,
            nanos: 2_000_000,
        }),
        tags: vec![
            KeyValue {
                key: "span.kind".into(),
                v_type: ValueType::String as i32,
                v_str: "server".into(),
                ..Default::default()
            },
            KeyValue {
                key: "retries".into(),
                v_type: ValueType::Int64 as i32,
                v_int64: 3,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_grpc_spans_come_back_through_grpc_query() {
    let cli = AllInOneCli::try_parse_from([
        "spoor-all-in-one",
        "--collector.grpc-server.host-port=127.0.0.1:0",
        "--collector.otlp.enabled=false",
        "--collector.http-server.host-port=127.0.0.1:0",
        "--query.http-server.host-port=127.0.0.1:0",
        "--query.grpc-server.host-port=127.0.0.1:0",
    ])
    .unwrap();
    let mut registry = Registry::default();
    let storage = cli.storage.open(&mut registry).await.unwrap();
    let collector = Collector::bind(
        cli.collector,
        std::sync::Arc::clone(&storage.writer),
        &spoor_sampling::Sampling::defaults(std::sync::Arc::clone(&storage.sampling))
            .await
            .unwrap(),
        None,
        &mut registry,
    )
    .await
    .unwrap();
    let query = QueryServer::bind(
        cli.query,
        std::sync::Arc::clone(&storage.reader),
        std::sync::Arc::clone(&storage.dependencies),
        storage.archive.clone(),
        None,
        &mut registry,
    )
    .await
    .unwrap();
    let collector_addr = collector.local_addrs().grpc;
    let query_addr = query.local_addrs()[1];
    let (trigger, shutdown) = ShutdownTrigger::new();
    let serving = spoor_server::serve::Serving::new(Default::default(), shutdown, &mut registry)
        .expect("no tokens file to read");
    let c = tokio::spawn(collector.run(serving.clone()));
    let q = tokio::spawn(query.run(serving));

    let mut client = CollectorServiceClient::connect(format!("http://{collector_addr}"))
        .await
        .unwrap();
    let now = SystemTime::now() - Duration::from_secs(10);
    let batch = Batch {
        spans: vec![
            span(42, 1, "checkout", None, now),
            span(42, 2, "charge", Some(1), now),
        ],
        process: Some(Process {
            service_name: "shop".into(),
            tags: vec![],
        }),
    };
    client
        .post_spans(PostSpansRequest { batch: Some(batch) })
        .await
        .unwrap();

    // a zero trace id is refused by name, and the valid span beside it kept
    let mut bad = span(0, 9, "bad", None, now);
    bad.trace_id = vec![0; 16];
    let batch = Batch {
        spans: vec![bad, span(43, 1, "ok", None, now)],
        process: Some(Process {
            service_name: "shop".into(),
            tags: vec![],
        }),
    };
    let err = client
        .post_spans(PostSpansRequest { batch: Some(batch) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("trace id is zero"),
        "{}",
        err.message()
    );

    let mut query = QueryServiceClient::connect(format!("http://{query_addr}"))
        .await
        .unwrap();
    let trace_id = [0u64.to_be_bytes(), 42u64.to_be_bytes()].concat();
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans.clear();
        match query
            .get_trace(GetTraceRequest {
                trace_id: trace_id.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                while let Some(chunk) = stream.message().await.unwrap() {
                    spans.extend(chunk.spans);
                }
                if spans.len() == 2 {
                    break;
                }
            }
            Err(e) => assert_eq!(e.code(), Code::NotFound),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(spans.len(), 2);
    let charge = spans.iter().find(|s| s.operation_name == "charge").unwrap();
    assert_eq!(charge.references[0].span_id, 1u64.to_be_bytes().to_vec());
    assert_eq!(charge.process.as_ref().unwrap().service_name, "shop");
    assert_eq!(charge.tags[1].v_int64, 3);
    assert_eq!(charge.duration.unwrap().nanos, 2_000_000);

    let services = query
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services, vec!["shop".to_string()]);
    let ops = query
        .get_operations(GetOperationsRequest {
            service: "shop".into(),
            span_kind: "server".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operation_names, vec!["charge", "checkout", "ok"]);

    let found = query
        .find_traces(FindTracesRequest {
            query: Some(TraceQueryParameters {
                service_name: "shop".into(),
                operation_name: "charge".into(),
                tags: [("retries".to_string(), "3".to_string())].into(),
                start_time_min: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                search_depth: 10,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut stream = found.into_inner();
    let mut n = 0;
    while let Some(chunk) = stream.message().await.unwrap() {
        n += chunk.spans.len();
    }
    assert_eq!(n, 2, "the whole matching trace streams back");

    let missing = query
        .get_trace(GetTraceRequest {
            trace_id: vec![7; 16],
            ..Default::default()
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let invalid = query
        .get_trace(GetTraceRequest {
            trace_id: vec![7; 3],
            ..Default::default()
        })
        .await;
    assert_eq!(invalid.unwrap_err().code(), Code::InvalidArgument);

    trigger.trigger();
    c.await.unwrap().unwrap();
    q.await.unwrap().unwrap();
}
