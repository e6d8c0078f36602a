//! The agent between real UDP senders and a real collector: spans arrive with
//! the agent's tags; bad packets are counted and dropped; spans sent while the
//! collector is down are delivered once it is back.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use prometheus_client::registry::Registry;
use spoor_agent::{Agent, AgentOptions};
use spoor_codec::thrift::{Protocol, encode_emit_batch};
use spoor_collector::{Collector, CollectorOptions};
use spoor_model::{KeyValue, Process, Span, SpanId, TraceId, Value};
use spoor_server::shutdown::{Shutdown, ShutdownTrigger};
use spoor_storage::SpanReader;
use spoor_storage_memory::{MemoryConfig, MemoryStore};
use spoor_storage_select::Storage;

#[derive(Parser)]
struct AgentCli {
    #[command(flatten)]
    agent: AgentOptions,
}

#[derive(Parser)]
struct CollectorCli {
    #[command(flatten)]
    collector: CollectorOptions,
}

fn storage() -> (Storage, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }));
    (
        Storage {
            writer: store.clone(),
            reader: store.clone(),
            dependencies: store.clone(),
            sampling: Arc::new(spoor_storage_memory::MemorySamplingStore::default()),
            dependency_writer: None,
            archive: None,
        },
        store,
    )
}

async fn start_collector(
    storage: &Storage,
    grpc: &str,
) -> (
    SocketAddr,
    ShutdownTrigger,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let cli = CollectorCli::try_parse_from([
        "c",
        &format!("--collector.grpc-server.host-port={grpc}"),
        "--collector.http-server.host-port=127.0.0.1:0",
        "--collector.otlp.enabled=false",
    ])
    .unwrap();
    let collector = Collector::bind(
        cli.collector,
        std::sync::Arc::clone(&storage.writer),
        &spoor_sampling::Sampling::defaults(std::sync::Arc::clone(&storage.sampling))
            .await
            .unwrap(),
        None,
        &mut Registry::default(),
    )
    .await
    .unwrap();
    let addr = collector.local_addrs().grpc;
    let (trigger, shutdown) = ShutdownTrigger::new();
    (
        addr,
        trigger,
        tokio::spawn(collector.run(serving(shutdown))),
    )
}

async fn start_agent(
    collector: SocketAddr,
    registry: &mut Registry,
) -> (Agent, ShutdownTrigger, Shutdown) {
    let cli = AgentCli::try_parse_from([
        "a",
        "--processor.jaeger-compact.server-host-port=127.0.0.1:0",
        "--processor.jaeger-binary.server-host-port=127.0.0.1:0",
        "--processor.zipkin-compact.server-host-port=127.0.0.1:0",
        "--http-server.host-port=127.0.0.1:0",
        &format!("--reporter.grpc.host-port={collector}"),
        "--reporter.grpc.timeout=1s",
        "--agent.tags=zone=test,pod=${SPOOR_TEST_UNSET:local}",
    ])
    .unwrap();
    let agent = Agent::bind(cli.agent, registry).await.unwrap();
    let (trigger, shutdown) = ShutdownTrigger::new();
    (agent, trigger, shutdown)
}

fn span(trace: u128) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(1),
        operation_name: "udp-op".into(),
        references: vec![],
        flags: 1,
        start_time: SystemTime::now(),
        duration: Duration::from_millis(3),
        tags: vec![KeyValue::new("attempt", Value::Int64(2))],
        logs: vec![],
        process: Default::default(),
        warnings: vec![],
    }
}

fn process() -> Process {
    Process {
        service_name: "udp-client".into(),
        tags: vec![KeyValue::string("hostname", "h")],
    }
}

/// A collector on the memory store and an agent forwarding to it, running.
struct Harness {
    storage: Storage,
    store: Arc<MemoryStore>,
    registry: Registry,
    addrs: spoor_agent::AgentAddrs,
    collector_addr: SocketAddr,
    collector: Option<(ShutdownTrigger, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    agent: (ShutdownTrigger, tokio::task::JoinHandle<anyhow::Result<()>>),
}

async fn harness() -> Harness {
    let (storage, store) = storage();
    let (collector_addr, stop_collector, collector) =
        start_collector(&storage, "127.0.0.1:0").await;
    let mut registry = Registry::default();
    let (agent, stop_agent, shutdown) = start_agent(collector_addr, &mut registry).await;
    let addrs = agent.local_addrs();
    let agent_task = tokio::spawn(agent.run(serving(shutdown)));
    Harness {
        storage,
        store,
        registry,
        addrs,
        collector_addr,
        collector: Some((stop_collector, collector)),
        agent: (stop_agent, agent_task),
    }
}

impl Harness {
    async fn stop_collector(&mut self) {
        if let Some((stop, task)) = self.collector.take() {
            stop.trigger();
            task.await.unwrap().unwrap();
        }
    }

    /// A new collector on the address of the first, on the same store.
    async fn start_collector(&mut self) {
        let (_, stop, task) =
            start_collector(&self.storage, &self.collector_addr.to_string()).await;
        self.collector = Some((stop, task));
    }

    async fn stop(mut self) {
        self.agent.0.trigger();
        (&mut self.agent.1).await.unwrap().unwrap();
        self.stop_collector().await;
    }
}

async fn wait_for(store: &MemoryStore, id: u128) -> Option<spoor_model::Trace> {
    for _ in 0..300 {
        if let Some(t) = store.get_trace(TraceId(id)).await.unwrap() {
            return Some(t);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn encoded(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn metric(registry: &Registry, line_start: &str) -> String {
    let text = encoded(registry);
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("{line_start} not in {text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_and_binary_packets_reach_the_collector_and_bad_ones_are_counted() {
    let h = harness().await;
    let store = Arc::clone(&h.store);
    let addrs = h.addrs;

    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(
            &encode_emit_batch(&process(), &[span(0xc1)], Protocol::Compact, 1),
            addrs.compact,
        )
        .await
        .unwrap();
    client
        .send_to(
            &encode_emit_batch(&process(), &[span(0xb1)], Protocol::Binary, 1),
            addrs.binary,
        )
        .await
        .unwrap();
    let good = encode_emit_batch(&process(), &[span(0xc2)], Protocol::Compact, 2);
    client
        .send_to(&good[..good.len() / 2], addrs.compact)
        .await
        .unwrap();
    client
        .send_to(b"\x82\x21 definitely not thrift", addrs.compact)
        .await
        .unwrap();
    client
        .send_to(&vec![0u8; 65_400], addrs.compact)
        .await
        .unwrap();
    client
        .send_to(
            &encode_emit_batch(&process(), &[span(0xc3)], Protocol::Compact, 3),
            addrs.compact,
        )
        .await
        .unwrap();

    for id in [0xc1, 0xb1, 0xc3] {
        let trace = wait_for(&store, id)
            .await
            .unwrap_or_else(|| panic!("trace {id:x} not forwarded"));
        let s = &trace.spans[0];
        assert_eq!(s.process.service_name, "udp-client");
        let tags: Vec<(&str, String)> = s
            .process
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_string().into_owned()))
            .collect();
        assert_eq!(
            tags,
            vec![
                ("hostname", "h".into()),
                ("zone", "test".into()),
                ("pod", "local".into())
            ]
        );
        assert_eq!(s.tag("attempt"), Some(&Value::Int64(2)));
    }
    assert!(store.get_trace(TraceId(0xc2)).await.unwrap().is_none());
    assert_eq!(
        metric(
            &h.registry,
            "spoor_agent_decode_errors_total{protocol=\"jaeger_compact\"}"
        ),
        "spoor_agent_decode_errors_total{protocol=\"jaeger_compact\"} 2"
    );
    assert_eq!(
        metric(&h.registry, "spoor_agent_packets_too_large_total"),
        "spoor_agent_packets_too_large_total{protocol=\"jaeger_compact\"} 1"
    );
    // the kernel's own drops are exported too (none at this rate)
    assert_eq!(
        metric(
            &h.registry,
            "spoor_agent_kernel_drops_total{protocol=\"jaeger_compact\"}"
        ),
        "spoor_agent_kernel_drops_total{protocol=\"jaeger_compact\"} 0"
    );
    // the collector stores a batch before its answer reaches the agent
    let mut forwarded = String::new();
    for _ in 0..300 {
        forwarded = metric(&h.registry, "spoor_agent_spans_forwarded_total");
        if forwarded.ends_with(" 3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(forwarded, "spoor_agent_spans_forwarded_total 3");

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_sent_while_the_collector_is_down_arrive_after_it_restarts() {
    let mut h = harness().await;
    let store = Arc::clone(&h.store);
    let addrs = h.addrs;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(
            &encode_emit_batch(&process(), &[span(0xd0)], Protocol::Compact, 1),
            addrs.compact,
        )
        .await
        .unwrap();
    assert!(wait_for(&store, 0xd0).await.is_some());

    h.stop_collector().await;
    for i in 1..=20u128 {
        client
            .send_to(
                &encode_emit_batch(&process(), &[span(0xd0 + i)], Protocol::Compact, i as i32),
                addrs.compact,
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.get_trace(TraceId(0xd1)).await.unwrap().is_none(),
        "collector is down"
    );

    h.start_collector().await;
    for i in 1..=20u128 {
        assert!(
            wait_for(&store, 0xd0 + i).await.is_some(),
            "span {i} lost across the restart"
        );
    }
    assert!(
        metric(&h.registry, "spoor_agent_forward_failures_total")
            .split(' ')
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_sampling_strategies_from_the_collector_through_the_agent() {
    let mut h = harness().await;
    let base = format!("http://{}", h.addrs.http);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    let json: serde_json::Value = get("/sampling?service=shop")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.001}})
    );
    let legacy: serde_json::Value = get("/?service=shop").await.unwrap().json().await.unwrap();
    assert_eq!(legacy["strategyType"], 0);
    let baggage: serde_json::Value = get("/baggageRestrictions?service=shop")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(baggage, serde_json::json!([]));
    for path in [
        "/sampling",
        "/sampling?service=a&service=b",
        "/baggageRestrictions",
    ] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert!(resp.text().await.unwrap().contains("'service'"));
    }

    // with the collector gone, the cached strategy is still served; an unknown service fails clearly
    h.stop_collector().await;
    assert_eq!(get("/sampling?service=shop").await.unwrap().status(), 200);
    let resp = get("/sampling?service=never-seen").await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("no collector answered"));

    h.stop().await;
}

/// `Agent.emitZipkinBatch` with one v1 span (client side, cs/cr), in Thrift compact.
fn zipkin_datagram(trace: i64) -> Vec<u8> {
    use spoor_codec::thrift::protocol::{CompactWriter, MessageType, TType, Writer};
    let mut w = CompactWriter::default();
    w.write_message_begin("emitZipkinBatch", MessageType::Oneway, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::List, 1);
    w.write_list_begin(TType::Struct, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::I64, 1);
    w.write_i64(trace);
    w.write_field_begin(TType::Binary, 3);
    w.write_string("zipkin-call");
    w.write_field_begin(TType::I64, 4);
    w.write_i64(7);
    w.write_field_begin(TType::List, 6);
    w.write_list_begin(TType::Struct, 2);
    for (ts, value) in [
        (1_700_000_000_000_000i64, "cs"),
        (1_700_000_000_002_000, "cr"),
    ] {
        w.write_struct_begin();
        w.write_field_begin(TType::I64, 1);
        w.write_i64(ts);
        w.write_field_begin(TType::Binary, 2);
        w.write_string(value);
        w.write_field_begin(TType::Struct, 3);
        w.write_struct_begin();
        w.write_field_begin(TType::Binary, 3);
        w.write_string("zipkin-client");
        w.write_field_stop();
        w.write_struct_end();
        w.write_field_stop();
        w.write_struct_end();
    }
    w.write_field_stop();
    w.write_struct_end();
    w.write_field_stop();
    w.write_struct_end();
    w.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_thrift_datagrams_reach_the_collector() {
    let h = harness().await;
    let store = Arc::clone(&h.store);
    let addr = h.addrs.zipkin;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&zipkin_datagram(0x2f), addr).await.unwrap();
    client.send_to(b"\x82\x81 not zipkin", addr).await.unwrap();

    let trace = wait_for(&store, 0x2f).await.expect("zipkin span forwarded");
    let s = &trace.spans[0];
    assert_eq!(s.operation_name, "zipkin-call");
    assert_eq!(s.process.service_name, "zipkin-client");
    assert_eq!(s.duration, Duration::from_millis(2));
    assert_eq!(s.tag("span.kind"), Some(&Value::String("client".into())));
    assert!(
        s.process.tags.iter().any(|t| t.key == "zone"),
        "agent tags added"
    );
    // the bad datagram may be decoded after the good one, by another worker
    let counted = "spoor_agent_decode_errors_total{protocol=\"zipkin_compact\"} 1";
    for _ in 0..300 {
        if encoded(&h.registry).lines().any(|l| l == counted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metric(&h.registry, "spoor_agent_decode_errors_total"),
        counted
    );

    h.stop().await;
}

fn serving(shutdown: spoor_server::shutdown::Shutdown) -> spoor_server::serve::Serving {
    spoor_server::serve::Serving::new(Default::default(), shutdown, &mut Registry::default())
        .expect("no tokens file to read")
}
