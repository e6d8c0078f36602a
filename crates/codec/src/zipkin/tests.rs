use std::time::{Duration, UNIX_EPOCH};

use prost::Message;
use spoor_model::{KeyValue, RefType, Span, SpanId, TraceId, Value};

use super::*;
use crate::thrift::protocol::{BinaryWriter, CompactWriter, MessageType, TType, Writer};

fn tag<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
    s.tag(key)
}

const V2_JSON: &str = r#"[
  {"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","parentId":"6b221d5bc9e6496c",
   "name":"get /api","kind":"CLIENT","timestamp":1556604172355737,"duration":1431,
   "localEndpoint":{"serviceName":"frontend","ipv4":"192.168.99.1","port":3306},
   "remoteEndpoint":{"serviceName":"backend","ipv4":"172.19.0.2","port":9000},
   "annotations":[{"timestamp":1556604172355800,"value":"ws"}],
   "tags":{"http.method":"GET","error":"timeout"}},
  {"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","parentId":"6b221d5bc9e6496c",
   "name":"get /api","kind":"SERVER","timestamp":1556604172355900,"duration":1000,
   "localEndpoint":{"serviceName":"backend","ipv4":"172.19.0.2"},"shared":true,"debug":true},
  {"traceId":"not-hex","id":"1"}
]"#;

fn check_v2(spans: &[Span]) {
    assert_eq!(spans.len(), 2);
    let (client, server) = (&spans[0], &spans[1]);
    assert_eq!(client.trace_id, TraceId(0x5af7183fb1d4cf5f));
    assert_eq!(client.span_id, server.span_id, "shared span ids are kept");
    assert_eq!(client.references[0].span_id, SpanId(0x6b221d5bc9e6496c));
    assert_eq!(client.references[0].ref_type, RefType::ChildOf);
    assert_eq!(
        client.start_time,
        UNIX_EPOCH + Duration::from_micros(1556604172355737)
    );
    assert_eq!(client.duration, Duration::from_micros(1431));
    assert_eq!(client.process.service_name, "frontend");
    assert_eq!(
        client.process.tags,
        vec![KeyValue::string("ip", "192.168.99.1")]
    );
    assert_eq!(
        tag(client, "span.kind"),
        Some(&Value::String("client".into()))
    );
    assert_eq!(
        tag(client, "peer.service"),
        Some(&Value::String("backend".into()))
    );
    assert_eq!(tag(client, "peer.ipv4"), Some(&Value::Int64(0xAC130002)));
    assert_eq!(tag(client, "peer.port"), Some(&Value::Int64(9000)));
    assert_eq!(
        tag(client, "http.method"),
        Some(&Value::String("GET".into()))
    );
    assert_eq!(tag(client, "error"), Some(&Value::Bool(true)));
    assert_eq!(
        tag(client, "otel.status_code"),
        Some(&Value::String("ERROR".into()))
    );
    assert_eq!(
        tag(client, "error.message"),
        Some(&Value::String("timeout".into()))
    );
    assert_eq!(client.logs[0].fields, vec![KeyValue::string("event", "ws")]);
    assert_eq!(server.process.service_name, "backend");
    assert_eq!(
        tag(server, "span.kind"),
        Some(&Value::String("server".into()))
    );
    assert_eq!(server.flags, 3, "debug spans carry the debug flag");
}

#[test]
fn v2_json_converts_with_jaegers_names() {
    let (spans, errors) = decode_v2_json(V2_JSON.as_bytes()).unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("not-hex"), "{errors:?}");
    check_v2(&to_model(spans));
}

#[test]
fn v2_protobuf_converts_like_json() {
    use spoor_proto::zipkin::{Annotation, Endpoint as E, ListOfSpans, Span as P, span::Kind as K};
    let ep = |name: &str, ip: [u8; 4], port| E {
        service_name: name.into(),
        ipv4: ip.to_vec(),
        ipv6: vec![],
        port,
    };
    let client = P {
        trace_id: 0x5af7183fb1d4cf5fu64.to_be_bytes().to_vec(),
        parent_id: 0x6b221d5bc9e6496cu64.to_be_bytes().to_vec(),
        id: 0x352bff9a74ca9ad2u64.to_be_bytes().to_vec(),
        kind: K::Client as i32,
        name: "get /api".into(),
        timestamp: 1556604172355737,
        duration: 1431,
        local_endpoint: Some(ep("frontend", [192, 168, 99, 1], 3306)),
        remote_endpoint: Some(ep("backend", [172, 19, 0, 2], 9000)),
        annotations: vec![Annotation {
            timestamp: 1556604172355800,
            value: "ws".into(),
        }],
        tags: [
            ("http.method".to_string(), "GET".to_string()),
            ("error".into(), "timeout".into()),
        ]
        .into(),
        debug: false,
        shared: false,
    };
    let server = P {
        kind: K::Server as i32,
        timestamp: 1556604172355900,
        duration: 1000,
        local_endpoint: Some(ep("backend", [172, 19, 0, 2], 0)),
        remote_endpoint: None,
        annotations: vec![],
        tags: Default::default(),
        debug: true,
        shared: true,
        ..client.clone()
    };
    let body = ListOfSpans {
        spans: vec![client, server],
    }
    .encode_to_vec();
    let (spans, errors) = decode_v2_proto(&body).unwrap();
    assert!(errors.is_empty());
    check_v2(&to_model(spans));
    assert!(decode_v2_proto(b"\xff\xff\xff").is_err());
}

const V1_JSON: &str = r#"[{
  "traceId":"0000000000000001000000000000000a","id":"000000000000000b","parentId":"000000000000000c",
  "name":"checkout",
  "annotations":[
    {"timestamp":100,"value":"cs","endpoint":{"serviceName":"web","ipv4":"10.0.0.1"}},
    {"timestamp":110,"value":"sr","endpoint":{"serviceName":"shop","ipv4":"10.0.0.2"}},
    {"timestamp":120,"value":"cache miss","endpoint":{"serviceName":"shop"}},
    {"timestamp":190,"value":"ss","endpoint":{"serviceName":"shop","ipv4":"10.0.0.2"}},
    {"timestamp":200,"value":"cr","endpoint":{"serviceName":"web","ipv4":"10.0.0.1"}}],
  "binaryAnnotations":[
    {"key":"sa","value":true,"endpoint":{"serviceName":"shop","ipv4":"10.0.0.2","port":8080}},
    {"key":"ca","value":true,"endpoint":{"serviceName":"web","ipv4":"10.0.0.1"}},
    {"key":"http.status_code","value":"200","endpoint":{"serviceName":"shop"}},
    {"key":"retries","value":2,"endpoint":{"serviceName":"web"}}]
}]"#;

fn check_v1(spans: &[Span]) {
    assert_eq!(spans.len(), 2, "client and server halves");
    let client = spans
        .iter()
        .find(|s| s.process.service_name == "web")
        .unwrap();
    let server = spans
        .iter()
        .find(|s| s.process.service_name == "shop")
        .unwrap();
    assert_eq!(client.trace_id, TraceId::new(1, 10));
    assert_eq!((client.span_id, server.span_id), (SpanId(11), SpanId(11)));
    assert_eq!(client.references[0].span_id, SpanId(12));
    assert_eq!(client.start_time, UNIX_EPOCH + Duration::from_micros(100));
    assert_eq!(client.duration, Duration::from_micros(100));
    assert_eq!(server.start_time, UNIX_EPOCH + Duration::from_micros(110));
    assert_eq!(server.duration, Duration::from_micros(80));
    assert_eq!(
        tag(client, "span.kind"),
        Some(&Value::String("client".into()))
    );
    assert_eq!(
        tag(client, "peer.service"),
        Some(&Value::String("shop".into()))
    );
    assert_eq!(tag(client, "peer.port"), Some(&Value::Int64(8080)));
    assert_eq!(tag(client, "retries"), Some(&Value::String("2".into())));
    assert_eq!(
        tag(server, "span.kind"),
        Some(&Value::String("server".into()))
    );
    assert_eq!(
        tag(server, "peer.service"),
        Some(&Value::String("web".into()))
    );
    assert_eq!(
        tag(server, "http.status_code"),
        Some(&Value::String("200".into()))
    );
    assert_eq!(
        server.logs[0].fields,
        vec![KeyValue::string("event", "cache miss")]
    );
}

#[test]
fn v1_json_splits_shared_spans_like_zipkin() {
    let (spans, errors) = decode_v1_json(V1_JSON.as_bytes()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    check_v1(&to_model(spans));
}

fn write_endpoint<W: Writer>(w: &mut W, id: i16, name: &str, ip: u32, port: i16) {
    w.write_field_begin(TType::Struct, id);
    w.write_struct_begin();
    w.write_field_begin(TType::I32, 1);
    w.write_i32(ip as i32);
    w.write_field_begin(TType::I16, 2);
    w.write_i16(port);
    w.write_field_begin(TType::Binary, 3);
    w.write_string(name);
    w.write_field_stop();
    w.write_struct_end();
}

/// The V1_JSON span as zipkincore.thrift structs.
fn write_v1_span<W: Writer>(w: &mut W) {
    let (web, shop) = (0x0a00_0001u32, 0x0a00_0002u32);
    w.write_struct_begin();
    w.write_field_begin(TType::I64, 1);
    w.write_i64(10);
    w.write_field_begin(TType::Binary, 3);
    w.write_string("checkout");
    w.write_field_begin(TType::I64, 4);
    w.write_i64(11);
    w.write_field_begin(TType::I64, 5);
    w.write_i64(12);
    let anns = [
        (100, "cs", "web", web),
        (110, "sr", "shop", shop),
        (120, "cache miss", "shop", 0),
        (190, "ss", "shop", shop),
        (200, "cr", "web", web),
    ];
    w.write_field_begin(TType::List, 6);
    w.write_list_begin(TType::Struct, anns.len());
    for (ts, value, svc, ip) in anns {
        w.write_struct_begin();
        w.write_field_begin(TType::I64, 1);
        w.write_i64(ts);
        w.write_field_begin(TType::Binary, 2);
        w.write_string(value);
        write_endpoint(w, 3, svc, ip, 0);
        w.write_field_stop();
        w.write_struct_end();
    }
    // key, value bytes, annotation type, endpoint service, ipv4, port
    type Binary<'a> = (&'a str, Vec<u8>, i32, &'a str, u32, i16);
    let bins: [Binary; 4] = [
        ("sa", vec![1], 0, "shop", shop, 8080),
        ("ca", vec![1], 0, "web", web, 0),
        ("http.status_code", b"200".to_vec(), 6, "shop", 0, 0),
        ("retries", 2i64.to_be_bytes().to_vec(), 4, "web", 0, 0),
    ];
    w.write_field_begin(TType::List, 8);
    w.write_list_begin(TType::Struct, bins.len());
    for (key, value, kind, svc, ip, port) in bins {
        w.write_struct_begin();
        w.write_field_begin(TType::Binary, 1);
        w.write_string(key);
        w.write_field_begin(TType::Binary, 2);
        w.write_binary(&value);
        w.write_field_begin(TType::I32, 3);
        w.write_i32(kind);
        write_endpoint(w, 4, svc, ip, port);
        w.write_field_stop();
        w.write_struct_end();
    }
    w.write_field_begin(TType::I64, 12);
    w.write_i64(1);
    w.write_field_stop();
    w.write_struct_end();
}

#[test]
fn v1_thrift_over_http_and_udp_converts_like_json() {
    let mut w = BinaryWriter::default();
    w.write_list_begin(TType::Struct, 1);
    write_v1_span(&mut w);
    let (spans, errors) = decode_v1_thrift(&w.into_bytes()).unwrap();
    assert!(errors.is_empty());
    check_v1(&to_model(spans));

    let mut w = CompactWriter::default();
    w.write_message_begin("emitZipkinBatch", MessageType::Oneway, 1);
    w.write_struct_begin();
    w.write_field_begin(TType::List, 1);
    w.write_list_begin(TType::Struct, 1);
    write_v1_span(&mut w);
    w.write_field_stop();
    w.write_struct_end();
    let datagram = w.into_bytes();
    let (spans, _) = decode_emit_zipkin_batch(&datagram).unwrap();
    check_v1(&to_model(spans));
    for len in 0..datagram.len() {
        assert!(
            decode_emit_zipkin_batch(&datagram[..len]).is_err(),
            "prefix {len}"
        );
    }
}
