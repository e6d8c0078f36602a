//! Collector writer → Kafka → ingester → store, on a real Kafka-protocol
//! broker: tansu (`cargo install tansu --locked --features dynostore`, as
//! `.ci/run` does). The tests are `#[ignore]`d in a plain `cargo test`;
//! scripts/test.sh runs them with `--ignored` when tansu is installed, and
//! without tansu they fail.
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use clap::Parser;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use spoor_kafka::{ConsumerOptions, Ingester, KafkaWriter, ProducerOptions};
use spoor_model::{KeyValue, Process, Span, SpanId, TraceId};
use spoor_storage::{SpanReader, SpanWriter, StorageError};
use spoor_storage_memory::{MemoryConfig, MemoryStore};

struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu_binary() -> String {
    let candidates = [
        std::env::var("SPOOR_TANSU").ok(),
        Some("tansu".to_string()),
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/.cargo/bin/tansu")),
    ];
    let found = candidates.into_iter().flatten().find(|bin| {
        Command::new(bin)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    found.expect("tansu is required: cargo install tansu --locked --features dynostore")
}

/// A broker on a free port, with `topics` created with 3 partitions each.
fn broker(topics: &[&str]) -> Broker {
    let bin = tansu_binary();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(&bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let broker = Broker { child, url };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "tansu did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for topic in topics {
        let created = Command::new(&bin)
            .args(["topic", "create", topic, "--broker", &broker.url])
            .args(["--partitions", "3"])
            .status()
            .unwrap();
        assert!(created.success(), "topic {topic} not created");
    }
    broker
}

impl Broker {
    fn address(&self) -> String {
        self.url.trim_start_matches("tcp://").to_string()
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    producer: ProducerOptions,
    #[command(flatten)]
    consumer: ConsumerOptions,
}

fn options(broker: &Broker, topic: &str, group: &str, extra: &[&str]) -> Cli {
    let brokers = broker.address();
    let mut args: Vec<String> = [
        "test".to_string(),
        format!("--kafka.producer.brokers={brokers}"),
        format!("--kafka.producer.topic={topic}"),
        format!("--kafka.consumer.brokers={brokers}"),
        format!("--kafka.consumer.topic={topic}"),
        format!("--kafka.consumer.group-id={group}"),
        "--ingester.batch-wait=20ms".to_string(),
        "--ingester.retry-backoff=20ms".to_string(),
        "--kafka.consumer.config=session.timeout.ms=6000;heartbeat.interval.ms=500".to_string(),
    ]
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    Cli::parse_from(args)
}

fn unique(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `traces` traces of `spans_per_trace` spans, starting now.
fn spans(traces: u64, spans_per_trace: u64) -> Vec<Span> {
    let process = Arc::new(Process {
        service_name: "kafka-shop".into(),
        tags: vec![KeyValue::string("host", "h1")],
    });
    let now = SystemTime::now();
    (1..=traces)
        .flat_map(|t| {
            let process = Arc::clone(&process);
            (1..=spans_per_trace).map(move |s| Span {
                trace_id: TraceId::new(0xabc, t),
                span_id: SpanId(s),
                operation_name: format!("op-{s}"),
                references: vec![],
                flags: 1,
                start_time: now,
                duration: Duration::from_millis(s),
                tags: vec![KeyValue::string("n", s.to_string())],
                logs: vec![],
                process: Arc::clone(&process),
                warnings: vec![],
            })
        })
        .collect()
}

fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: 1 << 30,
    }))
}

/// Waits until `store` holds every span of `expected`, each once.
async fn wait_for_all(store: &MemoryStore, expected: &[Span]) {
    let started = Instant::now();
    loop {
        let mut missing = 0;
        for trace in 1..=expected.iter().map(|s| s.trace_id.low()).max().unwrap() {
            let want = expected
                .iter()
                .filter(|s| s.trace_id.low() == trace)
                .count();
            let have = store
                .get_trace(TraceId::new(0xabc, trace))
                .await
                .unwrap()
                .map_or(0, |t| t.spans.len());
            assert!(
                have <= want,
                "trace {trace}: {have} spans, more than the {want} sent"
            );
            missing += want - have;
        }
        if missing == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{missing} spans never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's committed offsets, summed over the topic's partitions.
fn committed(broker: &Broker, topic: &str, group: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    offsets
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Starts an ingester writing to `writer`; stop it by sending on the channel.
fn ingest(
    cli: &Cli,
    writer: Arc<dyn SpanWriter>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Arc<spoor_kafka::IngesterMetrics>>,
) {
    let ingester = Ingester::new(&cli.consumer, writer, &mut Registry::default()).unwrap();
    let metrics = ingester.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ingester
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        metrics
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the tansu broker; scripts/test.sh runs it when tansu is installed"]
async fn spans_go_through_kafka_into_storage_and_offsets_are_committed() {
    let topic = unique("spans");
    let broker = broker(&[&topic]);
    let group = unique("group");
    let cli = options(&broker, &topic, &group, &[]);
    let sent = spans(30, 10);
    let writer = KafkaWriter::new(&cli.producer).unwrap();
    writer.write_spans(sent.clone()).await.unwrap();
    assert_eq!(writer.stats().delivered.load(Ordering::Relaxed), 300);

    let store = memory();
    let (stop, task) = ingest(&cli, store.clone());
    wait_for_all(&store, &sent).await;
    stop.send(()).unwrap();
    let metrics = task.await.unwrap();
    assert_eq!(metrics.spans_written.get(), 300);
    assert_eq!(metrics.undecodable.get(), 0);
    assert_eq!(
        committed(&broker, &topic, &group),
        300,
        "every message committed"
    );
    let trace = store
        .get_trace(TraceId::new(0xabc, 7))
        .await
        .unwrap()
        .unwrap();
    assert!(
        trace
            .spans
            .iter()
            .all(|s| s.process.service_name == "kafka-shop")
    );
}

/// Every compression codec a Jaeger user may have configured goes through a
/// real broker and comes out whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the tansu broker; scripts/test.sh runs it when tansu is installed"]
async fn every_compression_codec_round_trips() {
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let topics: Vec<String> = codecs.iter().map(|c| unique(c)).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let broker = broker(&names);
    for (codec, topic) in codecs.iter().zip(&topics) {
        let cli = options(
            &broker,
            topic,
            &unique("group"),
            &[&format!("--kafka.producer.compression={codec}")],
        );
        let sent = spans(5, 20);
        let writer = KafkaWriter::new(&cli.producer).unwrap();
        writer.write_spans(sent.clone()).await.unwrap();
        let store = memory();
        let (stop, task) = ingest(&cli, store.clone());
        wait_for_all(&store, &sent).await;
        stop.send(()).unwrap();
        let metrics = task.await.unwrap();
        assert_eq!(metrics.spans_written.get(), 100, "{codec}");
        assert_eq!(metrics.undecodable.get(), 0, "{codec}");
    }
}

/// Fails the first `failures` writes, then stores.
struct Flaky {
    failures: AtomicU32,
    store: Arc<MemoryStore>,
}

#[async_trait]
impl SpanWriter for Flaky {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(StorageError::unavailable_msg("storage is down"));
        }
        self.store.write_spans(spans).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the tansu broker; scripts/test.sh runs it when tansu is installed"]
async fn storage_failures_are_retried_and_garbage_is_skipped_without_losing_spans() {
    let topic = unique("flaky");
    let dead = unique("dead-letters");
    let broker = broker(&[&topic, &dead]);
    let dead_letters = format!("--kafka.consumer.dead-letter-topic={dead}");
    let cli = options(&broker, &topic, &unique("group"), &[&dead_letters]);
    let sent = spans(12, 5);
    let writer = KafkaWriter::new(&cli.producer).unwrap();
    writer.write_spans(sent[..30].to_vec()).await.unwrap();
    // garbage in the middle of a partition's stream
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .unwrap();
    for partition in 0..3 {
        raw.send(
            FutureRecord::<(), [u8]>::to(&topic)
                .partition(partition)
                .payload(b"\xff\xfenot a span"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    writer.write_spans(sent[30..].to_vec()).await.unwrap();

    let store = memory();
    let flaky = Arc::new(Flaky {
        failures: AtomicU32::new(4),
        store: store.clone(),
    });
    let (stop, task) = ingest(&cli, flaky);
    wait_for_all(&store, &sent).await;
    stop.send(()).unwrap();
    let metrics = task.await.unwrap();
    assert_eq!(metrics.write_failures.get(), 4);
    assert_eq!(metrics.undecodable.get(), 3);
    assert_eq!(
        metrics.dead_lettered.get(),
        3,
        "garbage kept for inspection"
    );
    assert_eq!(metrics.spans_written.get(), 60);
}

/// Never finishes a write: an ingester that dies with work in flight.
struct Hung;

#[async_trait]
impl SpanWriter for Hung {
    async fn write_spans(&self, _: Vec<Span>) -> Result<(), StorageError> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the tansu broker; scripts/test.sh runs it when tansu is installed"]
async fn what_a_crashed_ingester_did_not_write_is_delivered_to_the_next() {
    let topic = unique("crash");
    let broker = broker(&[&topic]);
    let group = unique("group");
    let cli = options(&broker, &topic, &group, &[]);
    let sent = spans(20, 4);
    KafkaWriter::new(&cli.producer)
        .unwrap()
        .write_spans(sent.clone())
        .await
        .unwrap();

    let (_stop, crashed) = ingest(&cli, Arc::new(Hung));
    // let it take its partitions and read the messages it will never write
    tokio::time::sleep(Duration::from_secs(3)).await;
    crashed.abort();
    let _ = crashed.await;
    assert_eq!(
        committed(&broker, &topic, &group),
        0,
        "nothing written, nothing committed"
    );

    let store = memory();
    let (stop, task) = ingest(&cli, store.clone());
    wait_for_all(&store, &sent).await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(committed(&broker, &topic, &group), 80);
}
