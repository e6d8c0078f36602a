use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use proptest::prelude::*;
use serde_json::Value as Json;
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

use super::protocol::{BinaryWriter, CompactWriter, MessageType, TType, Writer};
use super::*;

fn testdata(name: &str) -> String {
    let path = format!(
        "{}/../../testdata/thrift/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Writes a Thrift struct from Jaeger's JSON rendering of it, field by field,
/// independently of the codec's own encoder.
fn write_json_tag<W: Writer>(w: &mut W, tag: &Json) {
    w.write_struct_begin();
    w.write_field_begin(TType::Binary, 1);
    w.write_string(tag["key"].as_str().unwrap());
    let kind = tag["vType"].as_str().unwrap();
    w.write_field_begin(TType::I32, 2);
    w.write_i32(
        ["STRING", "DOUBLE", "BOOL", "LONG", "BINARY"]
            .iter()
            .position(|k| *k == kind)
            .unwrap() as i32,
    );
    match kind {
        "STRING" => {
            w.write_field_begin(TType::Binary, 3);
            w.write_string(tag["vStr"].as_str().unwrap());
        }
        "DOUBLE" => {
            w.write_field_begin(TType::Double, 4);
            w.write_double(tag["vDouble"].as_f64().unwrap());
        }
        "BOOL" => {
            w.write_field_begin(TType::Bool, 5);
            w.write_bool(tag["vBool"].as_bool().unwrap());
        }
        "LONG" => {
            w.write_field_begin(TType::I64, 6);
            w.write_i64(tag["vLong"].as_i64().unwrap());
        }
        _ => {
            w.write_field_begin(TType::Binary, 7);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(tag["vBinary"].as_str().unwrap())
                .unwrap();
            w.write_binary(&bytes);
        }
    }
    w.write_field_stop();
    w.write_struct_end();
}

fn write_json_tags<W: Writer>(w: &mut W, id: i16, tags: &Json) {
    let tags = tags.as_array().cloned().unwrap_or_default();
    w.write_field_begin(TType::List, id);
    w.write_list_begin(TType::Struct, tags.len());
    for t in &tags {
        write_json_tag(w, t);
    }
}

fn write_json_batch<W: Writer>(w: &mut W, batch: &Json) {
    w.write_struct_begin();
    w.write_field_begin(TType::Struct, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::Binary, 1);
    w.write_string(batch["process"]["serviceName"].as_str().unwrap());
    write_json_tags(w, 2, &batch["process"]["tags"]);
    w.write_field_stop();
    w.write_struct_end();
    let spans = batch["spans"].as_array().unwrap();
    w.write_field_begin(TType::List, 2);
    w.write_list_begin(TType::Struct, spans.len());
    for s in spans {
        w.write_struct_begin();
        for (id, key) in [
            (1, "traceIdLow"),
            (2, "traceIdHigh"),
            (3, "spanId"),
            (4, "parentSpanId"),
        ] {
            w.write_field_begin(TType::I64, id);
            w.write_i64(s[key].as_i64().unwrap_or(0));
        }
        w.write_field_begin(TType::Binary, 5);
        w.write_string(s["operationName"].as_str().unwrap());
        if let Some(refs) = s["references"].as_array() {
            w.write_field_begin(TType::List, 6);
            w.write_list_begin(TType::Struct, refs.len());
            for r in refs {
                w.write_struct_begin();
                w.write_field_begin(TType::I32, 1);
                w.write_i32(if r["refType"] == "FOLLOWS_FROM" { 1 } else { 0 });
                for (id, key) in [(2, "traceIdLow"), (3, "traceIdHigh"), (4, "spanId")] {
                    w.write_field_begin(TType::I64, id);
                    w.write_i64(r[key].as_i64().unwrap_or(0));
                }
                w.write_field_stop();
                w.write_struct_end();
            }
        }
        w.write_field_begin(TType::I32, 7);
        w.write_i32(s["flags"].as_i64().unwrap_or(0) as i32);
        w.write_field_begin(TType::I64, 8);
        w.write_i64(s["startTime"].as_i64().unwrap());
        w.write_field_begin(TType::I64, 9);
        w.write_i64(s["duration"].as_i64().unwrap());
        write_json_tags(w, 10, &s["tags"]);
        let logs = s["logs"].as_array().cloned().unwrap_or_default();
        w.write_field_begin(TType::List, 11);
        w.write_list_begin(TType::Struct, logs.len());
        for l in &logs {
            w.write_struct_begin();
            w.write_field_begin(TType::I64, 1);
            w.write_i64(l["timestamp"].as_i64().unwrap());
            write_json_tags(w, 2, &l["fields"]);
            w.write_field_stop();
            w.write_struct_end();
        }
        w.write_field_stop();
        w.write_struct_end();
    }
    w.write_field_stop();
    w.write_struct_end();
}

/// Jaeger's own pairs: a Thrift batch and the domain spans it converts to.
#[test]
fn golden_batches_convert_to_jaegers_domain_spans() {
    for n in ["01", "02"] {
        let batch: Json =
            serde_json::from_str(&testdata(&format!("thrift_batch_{n}.json"))).unwrap();
        let want =
            spoor_proto::jsonpb::trace_from_json(&testdata(&format!("domain_{n}.json"))).unwrap();
        let mut binary = BinaryWriter::default();
        write_json_batch(&mut binary, &batch);
        let mut compact = CompactWriter::default();
        write_json_batch(&mut compact, &batch);
        for (bytes, protocol) in [
            (binary.into_bytes(), Protocol::Binary),
            (compact.into_bytes(), Protocol::Compact),
        ] {
            let got = decode_batch(&bytes, protocol).unwrap();
            assert_eq!(got.spans, want.spans, "batch {n} over {protocol:?}");
        }
    }
}

fn sample_spans() -> (Process, Vec<Span>) {
    let process = Process {
        service_name: "frontend".into(),
        tags: vec![
            KeyValue::string("hostname", "h1"),
            KeyValue::new("ip", Value::Int64(167772161)),
        ],
    };
    let p = Arc::new(process.clone());
    let span = Span {
        trace_id: TraceId::new(7, 9),
        span_id: SpanId(3),
        operation_name: "HTTP GET".into(),
        references: vec![
            SpanRef {
                trace_id: TraceId::new(7, 9),
                span_id: SpanId(2),
                ref_type: RefType::ChildOf,
            },
            SpanRef {
                trace_id: TraceId::new(1, 1),
                span_id: SpanId(5),
                ref_type: RefType::FollowsFrom,
            },
        ],
        flags: 1,
        start_time: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        duration: Duration::from_micros(1500),
        tags: vec![
            KeyValue::string("s", "v"),
            KeyValue::new("b", Value::Bool(false)),
            KeyValue::new("i", Value::Int64(-5)),
            KeyValue::new("f", Value::Float64(2.5)),
            KeyValue::new("bin", Value::Binary(vec![1, 2, 3])),
        ],
        logs: vec![Log {
            timestamp: UNIX_EPOCH + Duration::from_micros(1_700_000_000_124_000),
            fields: vec![
                KeyValue::string("event", "retry"),
                KeyValue::new("ok", Value::Bool(true)),
            ],
        }],
        process: p,
        warnings: vec![],
    };
    (
        process,
        vec![
            span.clone(),
            Span {
                span_id: SpanId(4),
                references: vec![],
                ..span
            },
        ],
    )
}

#[test]
fn emit_batch_round_trips_in_both_protocols() {
    let (process, spans) = sample_spans();
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let datagram = encode_emit_batch(&process, &spans, protocol, 42);
        let got = decode_emit_batch(&datagram, protocol).unwrap();
        assert_eq!(*got.process, process);
        assert_eq!(got.spans, spans, "{protocol:?}");
        let body = encode_batch(&process, &spans, protocol);
        assert_eq!(decode_batch(&body, protocol).unwrap().spans, spans);
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let (process, spans) = sample_spans();
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let datagram = encode_emit_batch(&process, &spans, protocol, 1);
        for len in 0..datagram.len() {
            assert!(
                decode_emit_batch(&datagram[..len], protocol).is_err(),
                "{protocol:?} prefix {len}"
            );
        }
    }
}

#[test]
fn hostile_lengths_and_nesting_are_refused() {
    // compact: emitBatch header, then field 1 as a list claiming 2^60 elements
    let mut w = CompactWriter::default();
    w.write_message_begin("emitBatch", MessageType::Oneway, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::List, 1);
    let mut bytes = w.into_bytes();
    bytes.extend_from_slice(&[0xfc, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    assert!(matches!(
        decode_emit_batch(&bytes, Protocol::Compact),
        Err(ThriftError::BadLength(_))
    ));

    // binary: a string claiming 2 GB
    let mut w = BinaryWriter::default();
    w.write_message_begin("emitBatch", MessageType::Oneway, 1);
    w.write_field_begin(TType::Binary, 9);
    let mut bytes = w.into_bytes();
    bytes.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    assert!(matches!(
        decode_emit_batch(&bytes, Protocol::Binary),
        Err(ThriftError::BadLength(_))
    ));

    // an unknown field nesting structs 100 deep
    let mut w = BinaryWriter::default();
    w.write_message_begin("emitBatch", MessageType::Oneway, 1);
    for _ in 0..100 {
        w.write_field_begin(TType::Struct, 9);
    }
    let bytes = w.into_bytes();
    assert_eq!(
        decode_emit_batch(&bytes, Protocol::Binary),
        Err(ThriftError::TooDeep)
    );

    let other = {
        let mut w = BinaryWriter::default();
        w.write_message_begin("emitZipkinBatch", MessageType::Oneway, 1);
        w.write_field_stop();
        w.into_bytes()
    };
    assert!(
        decode_emit_batch(&other, Protocol::Binary)
            .unwrap_err()
            .to_string()
            .contains("emitZipkinBatch")
    );
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,20}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int64),
        (-1e15f64..1e15).prop_map(Value::Float64),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Binary),
    ]
}

fn key_values() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(
        (".{0,12}", value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..20,
    )
}

proptest! {
    #[test]
    fn any_batch_round_trips(
        high in any::<u64>(), low in 1u64.., ids in proptest::collection::vec(1u64.., 1..20),
        op in ".{0,30}", start_us in 0u64..4_000_000_000_000_000, dur_us in 0u64..1_000_000_000,
        flags in any::<u32>(), tags in key_values(), log_fields in key_values(),
        process_tags in key_values(), compact in any::<bool>(),
    ) {
        let process = Process { service_name: "svc".into(), tags: process_tags };
        let p = Arc::new(process.clone());
        let spans: Vec<Span> = ids.iter().map(|id| Span {
            trace_id: TraceId::new(high, low),
            span_id: SpanId(*id),
            operation_name: op.clone(),
            references: vec![SpanRef { trace_id: TraceId::new(high, low), span_id: SpanId(id ^ 1), ref_type: RefType::FollowsFrom }],
            flags,
            start_time: UNIX_EPOCH + Duration::from_micros(start_us),
            duration: Duration::from_micros(dur_us),
            tags: tags.clone(),
            logs: vec![Log { timestamp: UNIX_EPOCH + Duration::from_micros(start_us), fields: log_fields.clone() }],
            process: Arc::clone(&p),
            warnings: vec![],
        }).collect();
        let protocol = if compact { Protocol::Compact } else { Protocol::Binary };
        let got = decode_emit_batch(&encode_emit_batch(&process, &spans, protocol, 3), protocol).unwrap();
        prop_assert_eq!(got.spans, spans);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_emit_batch(&bytes, Protocol::Compact);
        let _ = decode_emit_batch(&bytes, Protocol::Binary);
        let _ = decode_batch(&bytes, Protocol::Binary);
    }
}
