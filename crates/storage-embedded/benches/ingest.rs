//! The blocks engine's own ingest cost, without the network: spans shaped
//! like the tracegen workload (10 per trace, 8 attributes, 10 services, one
//! `Arc<Process>` per service and request as the OTLP decoder makes) written
//! in requests of 50 traces by 4 writers, then cut into blocks. Prints the
//! process CPU time per phase as JSON.
//!
//!     cargo bench -p spoor-storage-embedded --bench ingest [-- SPANS]
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use spoor_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use spoor_storage::SpanWriter;
use spoor_storage_embedded::{BlockOptions, BlockStore};

// the servers' allocator: frees are a good part of the cost
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS_PER_TRACE: u64 = 10;
const TRACES_PER_REQUEST: u64 = 50;
const WRITERS: usize = 4;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One request's spans: its processes are its own, as a decoder's are.
fn request(rng: &mut Rng, start: SystemTime) -> Vec<Span> {
    let processes: Vec<Arc<Process>> = (0..10)
        .map(|i| {
            Arc::new(Process {
                service_name: format!("bench-svc-{i}"),
                tags: vec![
                    KeyValue::string("host.name", format!("node-{}", i % 4)),
                    KeyValue::new("process.pid", Value::Int64(1000 + i)),
                    KeyValue::string("telemetry.sdk.name", "bench"),
                ],
            })
        })
        .collect();
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let operations = [
        "GET /api/orders",
        "POST /api/orders",
        "SELECT orders",
        "publish order.created",
    ];
    let mut spans = Vec::new();
    for _ in 0..TRACES_PER_REQUEST {
        let trace_id = TraceId(u128::from(rng.next()) << 64 | u128::from(rng.next()));
        let root = SpanId(rng.next());
        for i in 0..SPANS_PER_TRACE {
            let span_id = if i == 0 { root } else { SpanId(rng.next()) };
            let mut tags = vec![
                KeyValue::string("span.kind", if i == 0 { "server" } else { "client" }),
                KeyValue::string(
                    "http.method",
                    if rng.below(10) < 7 { "GET" } else { "POST" },
                ),
                KeyValue::new("http.status_code", Value::Int64(200)),
            ];
            for a in 0..5 {
                tags.push(KeyValue::new(
                    format!("attr.{a}"),
                    match a % 3 {
                        0 => Value::String(format!(
                            "{}-{}",
                            words[rng.below(6) as usize],
                            rng.below(1000)
                        )),
                        1 => Value::Int64(rng.below(1_000_000) as i64),
                        _ => Value::Float64(rng.below(10_000) as f64 / 100.0),
                    },
                ));
            }
            spans.push(Span {
                trace_id,
                span_id,
                operation_name: operations[rng.below(4) as usize].to_string(),
                references: if i == 0 {
                    Vec::new()
                } else {
                    vec![SpanRef {
                        ref_type: RefType::ChildOf,
                        trace_id,
                        span_id: root,
                    }]
                },
                flags: 1,
                start_time: start + Duration::from_micros(rng.below(1_000_000)),
                duration: Duration::from_micros(50 + rng.below(50_000)),
                tags,
                logs: Vec::new(),
                process: Arc::clone(&processes[rng.below(10) as usize]),
                warnings: Vec::new(),
            });
        }
    }
    spans
}

/// This process's user + system CPU seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let spans: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let requests = spans / (SPANS_PER_TRACE * TRACES_PER_REQUEST);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = SystemTime::now();
    let batches: Vec<Vec<Span>> = (0..requests).map(|_| request(&mut rng, start)).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let store = BlockStore::open(dir.path(), BlockOptions::default())
            .await
            .expect("open");
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let queue = Arc::new(std::sync::Mutex::new(batches));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (store, queue) = (Arc::clone(&store), Arc::clone(&queue));
                tokio::spawn(async move {
                    loop {
                        let Some(batch) = queue.lock().unwrap().pop() else {
                            break;
                        };
                        store.write_spans(batch).await.expect("write");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        store.cut().await.expect("cut");
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        let written = requests * SPANS_PER_TRACE * TRACES_PER_REQUEST;
        println!(
            "{}",
            serde_json::json!({
                "spans": written,
                "cpu_seconds": cpu,
                "wall_seconds": (wall * 100.0).round() / 100.0,
                "spans_per_cpu_second": (written as f64 / cpu).round(),
                "blocks": store.stats().blocks,
            })
        );
    });
}
