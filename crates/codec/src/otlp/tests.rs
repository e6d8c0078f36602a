use super::*;
use proptest::prelude::*;

fn kv(key: &str, v: any_value::Value) -> OtlpKeyValue {
    OtlpKeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn str_kv(key: &str, v: &str) -> OtlpKeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn sample_span() -> OtlpSpan {
    OtlpSpan {
        trace_id: (1u128 << 64 | 2).to_be_bytes().to_vec(),
        span_id: 3u64.to_be_bytes().to_vec(),
        trace_state: "k=v".into(),
        parent_span_id: 4u64.to_be_bytes().to_vec(),
        flags: 1,
        name: "GET /users".into(),
        kind: OtlpKind::Server as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_002_500_000,
        attributes: vec![
            str_kv("http.method", "GET"),
            kv("http.status_code", any_value::Value::IntValue(500)),
        ],
        events: vec![Event {
            time_unix_nano: 1_700_000_000_001_000_000,
            name: "exception".into(),
            attributes: vec![str_kv("exception.message", "boom")],
            dropped_attributes_count: 0,
        }],
        links: vec![Link {
            trace_id: 9u128.to_be_bytes().to_vec(),
            span_id: 10u64.to_be_bytes().to_vec(),
            ..Default::default()
        }],
        status: Some(Status {
            code: StatusCode::Error as i32,
            message: "failed".into(),
        }),
        ..Default::default()
    }
}

fn request(spans: Vec<OtlpSpan>) -> Vec<ResourceSpans> {
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![str_kv(SERVICE_NAME, "users"), str_kv("host.name", "h1")],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "my.lib".into(),
                version: "1.0".into(),
                ..Default::default()
            }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }]
}

#[test]
fn maps_otlp_to_jaeger_model() {
    let (spans, errors) = spans_from_otlp(request(vec![sample_span()])).unwrap();
    assert_eq!(errors, vec![]);
    let s = &spans[0];
    assert_eq!(s.trace_id, TraceId::new(1, 2));
    assert_eq!(s.span_id, SpanId(3));
    assert_eq!(s.parent_span_id(), Some(SpanId(4)));
    assert_eq!(s.references[1].ref_type, RefType::FollowsFrom);
    assert_eq!(s.references[1].trace_id, TraceId(9));
    assert_eq!(s.duration, Duration::from_micros(2_500));
    assert_eq!(s.process.service_name, "users");
    assert_eq!(s.process.tags, vec![KeyValue::string("host.name", "h1")]);
    assert_eq!(s.kind(), SpanKind::Server);
    assert!(s.is_error());
    assert_eq!(s.tag("http.status_code"), Some(&Value::Int64(500)));
    assert_eq!(
        s.tag(STATUS_DESCRIPTION_TAG),
        Some(&Value::String("failed".into()))
    );
    assert_eq!(s.tag(SCOPE_NAME_TAG), Some(&Value::String("my.lib".into())));
    assert_eq!(s.tag(TRACE_STATE_TAG), Some(&Value::String("k=v".into())));
    assert_eq!(s.logs[0].fields[0], KeyValue::string("event", "exception"));
    assert_eq!(
        s.logs[0].fields[1],
        KeyValue::string("exception.message", "boom")
    );
}

#[test]
fn arrays_become_json_text() {
    let mut span = sample_span();
    let array = any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
        values: vec![
            AnyValue {
                value: Some(any_value::Value::IntValue(1)),
            },
            AnyValue {
                value: Some(any_value::Value::StringValue("a".into())),
            },
        ],
    });
    span.attributes = vec![kv("list", array)];
    let (spans, _) = spans_from_otlp(request(vec![span])).unwrap();
    assert_eq!(
        spans[0].tag("list"),
        Some(&Value::String(r#"[1,"a"]"#.into()))
    );
}

#[test]
fn bad_spans_are_reported_and_the_rest_kept() {
    let mut bad_trace = sample_span();
    bad_trace.trace_id = vec![1, 2];
    let mut bad_span = sample_span();
    bad_span.span_id = vec![];
    let (spans, errors) =
        spans_from_otlp(request(vec![bad_trace, sample_span(), bad_span])).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        errors,
        vec![OtlpError::TraceIdLength(2), OtlpError::SpanIdLength(0)]
    );

    let mut no_service = request(vec![sample_span(), sample_span()]);
    no_service[0].resource = None;
    let (spans, errors) = spans_from_otlp(no_service).unwrap();
    assert!(spans.is_empty());
    assert_eq!(
        errors,
        vec![OtlpError::NoServiceName, OtlpError::NoServiceName]
    );
}

#[test]
fn otlp_round_trips_through_the_model() {
    let original = request(vec![sample_span()]);
    let (spans, _) = spans_from_otlp(original.clone()).unwrap();
    assert_eq!(spans_to_otlp(&spans), original);
}

fn any_value() -> impl Strategy<Value = any_value::Value> {
    prop_oneof![
        ".*".prop_map(any_value::Value::StringValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        (-1e12f64..1e12).prop_map(any_value::Value::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(any_value::Value::BytesValue),
    ]
}

proptest! {
    #[test]
    fn any_span_round_trips(
        trace in 1u128..,
        id in 1u64..,
        parent in any::<u64>(),
        start in 0u64..4_000_000_000_000_000_000,
        len in 0u64..1_000_000_000_000,
        kind in 0i32..=5,
        attrs in proptest::collection::vec(("[a-z.]{1,12}", any_value()), 0..8),
    ) {
        prop_assume!(attrs.iter().all(|(k, _)| !k.starts_with("otel.") && k != "span.kind" && k != "error" && k != "w3c.tracestate"));
        let span = OtlpSpan {
            trace_id: trace.to_be_bytes().to_vec(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: if parent == 0 { vec![] } else { parent.to_be_bytes().to_vec() },
            flags: 1,
            name: "op".into(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + len,
            attributes: attrs.iter().map(|(k, v)| kv(k, v.clone())).collect(),
            ..Default::default()
        };
        let original = request(vec![span]);
        let (spans, errors) = spans_from_otlp(original.clone()).unwrap();
        prop_assert!(errors.is_empty());
        prop_assert_eq!(spans_to_otlp(&spans), original);
    }
}

#[test]
fn link_attributes_travel_as_a_link_log_and_come_back() {
    let mut span = sample_span();
    span.links = vec![
        Link {
            trace_id: 9u128.to_be_bytes().to_vec(),
            span_id: 10u64.to_be_bytes().to_vec(),
            trace_state: "a=b".into(),
            attributes: vec![
                str_kv("messaging.batch", "b1"),
                kv("n", any_value::Value::IntValue(3)),
            ],
            dropped_attributes_count: 2,
            ..Default::default()
        },
        Link {
            trace_id: 11u128.to_be_bytes().to_vec(),
            span_id: 12u64.to_be_bytes().to_vec(),
            attributes: vec![
                str_kv(REF_TYPE_ATTRIBUTE, "child_of"),
                str_kv("why", "retry"),
            ],
            ..Default::default()
        },
    ];
    let original = request(vec![span]);
    let (spans, errors) = spans_from_otlp(original.clone()).unwrap();
    assert_eq!(errors, vec![]);
    let s = &spans[0];
    assert_eq!(s.references[1].ref_type, RefType::FollowsFrom);
    assert_eq!(s.references[2].ref_type, RefType::ChildOf);
    let link_logs: Vec<_> = s
        .logs
        .iter()
        .filter(|l| l.fields[0] == KeyValue::string("event", "link"))
        .collect();
    assert_eq!(link_logs.len(), 2);
    assert_eq!(link_logs[0].timestamp, s.start_time);
    assert_eq!(
        link_logs[0].fields,
        vec![
            KeyValue::string("event", "link"),
            KeyValue::string("trace_id", "00000000000000000000000000000009"),
            KeyValue::string("span_id", "000000000000000a"),
            KeyValue::string("w3c.tracestate", "a=b"),
            KeyValue::new("otel.dropped_attributes_count", Value::Int64(2)),
            KeyValue::string("messaging.batch", "b1"),
            KeyValue::new("n", Value::Int64(3)),
        ]
    );
    // the child_of mark is the reference's type, not a field
    assert_eq!(link_logs[1].fields.len(), 4);
    assert_eq!(spans_to_otlp(&spans), original);
}

#[test]
fn a_link_log_naming_no_link_stays_an_event() {
    let mut span = sample_span();
    span.events.push(Event {
        time_unix_nano: 1_700_000_000_001_000_000,
        name: "link".into(),
        attributes: vec![
            str_kv("trace_id", "00000000000000000000000000000077"),
            str_kv("span_id", "0000000000000001"),
        ],
        dropped_attributes_count: 0,
    });
    let original = request(vec![span]);
    let (spans, _) = spans_from_otlp(original.clone()).unwrap();
    assert_eq!(spans_to_otlp(&spans), original);
}

/// The protobuf bytes of a request holding `resource_spans`.
fn encoded(resource_spans: Vec<ResourceSpans>) -> Vec<u8> {
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

/// A length-delimited field `tag` holding `bytes`.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::bytes::encode(tag, &bytes.to_vec(), &mut out);
    out
}

#[test]
fn fields_are_read_in_any_order() {
    let rs = request(vec![sample_span()]).remove(0);
    let ordered = decode_export_request(&encoded(vec![rs.clone()])).unwrap();
    // the resource after the spans, the scope after its spans, and the
    // span's lists before its ids
    let span = sample_span();
    let lists = OtlpSpan {
        attributes: span.attributes.clone(),
        events: span.events.clone(),
        links: span.links.clone(),
        ..Default::default()
    };
    let scalars = OtlpSpan {
        attributes: vec![],
        events: vec![],
        links: vec![],
        ..span
    };
    let span_bytes = [lists.encode_to_vec(), scalars.encode_to_vec()].concat();
    let scope = rs.scope_spans[0].scope.clone().unwrap();
    let scope_spans = [field(2, &span_bytes), field(1, &scope.encode_to_vec())].concat();
    let resource_spans = [
        field(2, &scope_spans),
        field(1, &rs.resource.clone().unwrap().encode_to_vec()),
    ]
    .concat();
    let shuffled = decode_export_request(&field(1, &resource_spans)).unwrap();
    assert_eq!(shuffled, ordered);
    assert_eq!(shuffled.0.len(), 1);
}

#[test]
fn a_message_given_twice_is_merged() {
    let span = sample_span();
    let (first, second) = span.attributes.split_at(1);
    let a = OtlpSpan {
        attributes: first.to_vec(),
        ..span.clone()
    };
    let b = OtlpSpan {
        attributes: second.to_vec(),
        name: "renamed".into(),
        ..Default::default()
    };
    let merged = OtlpSpan {
        name: "renamed".into(),
        ..span
    };
    let scope_spans = [
        field(
            1,
            &request(vec![]).remove(0).scope_spans[0]
                .scope
                .clone()
                .unwrap()
                .encode_to_vec(),
        ),
        field(2, &[a.encode_to_vec(), b.encode_to_vec()].concat()),
    ]
    .concat();
    let mut rs = request(vec![]).remove(0);
    rs.scope_spans.clear();
    let bytes = field(1, &[rs.encode_to_vec(), field(2, &scope_spans)].concat());
    let got = decode_export_request(&bytes).unwrap();
    let want = spans_from_otlp(request(vec![merged])).unwrap();
    assert_eq!(got, want);
}

#[test]
fn malformed_requests_are_refused_whole() {
    let good = encoded(request(vec![sample_span()]));
    assert!(decode_export_request(&good).is_ok());
    // cut short
    assert!(matches!(
        decode_export_request(&good[..good.len() - 3]),
        Err(WireError::Truncated | WireError::Malformed(_))
    ));
    // a key that is not UTF-8
    let mut span = sample_span();
    span.attributes[0].key = "KEY-X".into();
    let mut bytes = encoded(request(vec![span]));
    let at = bytes.windows(5).position(|w| w == b"KEY-X").unwrap();
    bytes[at] = 0xff;
    assert!(matches!(
        decode_export_request(&bytes),
        Err(WireError::Utf8)
    ));
    // a span name sent as a number
    let mut span_bytes = sample_span().encode_to_vec();
    prost::encoding::uint64::encode(5, &7, &mut span_bytes);
    let scope_spans = field(2, &span_bytes);
    let mut rs = request(vec![]).remove(0);
    rs.scope_spans.clear();
    let bytes = field(1, &[rs.encode_to_vec(), field(2, &scope_spans)].concat());
    assert!(matches!(
        decode_export_request(&bytes),
        Err(WireError::WireType { field: 5, .. })
    ));
}

fn nested_array(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for _ in 0..depth {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue { values: vec![v] },
            )),
        };
    }
    v
}

#[test]
fn nesting_is_bounded() {
    let with = |depth| {
        let mut span = sample_span();
        span.attributes = vec![OtlpKeyValue {
            key: "deep".into(),
            value: Some(nested_array(depth)),
            ..Default::default()
        }];
        decode_export_request(&encoded(request(vec![span])))
    };
    let (spans, _) = with(wire::MAX_VALUE_DEPTH).unwrap();
    let text = spans[0].tag("deep").unwrap().as_string().into_owned();
    assert_eq!(text.matches('[').count(), wire::MAX_VALUE_DEPTH);
    assert!(matches!(
        with(wire::MAX_VALUE_DEPTH + 1),
        Err(WireError::TooDeep)
    ));
}

#[test]
fn unknown_fields_and_groups_are_skipped() {
    let mut span_bytes = sample_span().encode_to_vec();
    prost::encoding::uint64::encode(99, &7, &mut span_bytes);
    prost::encoding::string::encode(100, &"future".to_string(), &mut span_bytes);
    // a group: start (wire type 3) and end (4) of field 101
    span_bytes.extend([0xab, 0x06, 0x08, 0x01, 0xac, 0x06]);
    let mut rs = request(vec![]).remove(0);
    let scope = rs.scope_spans[0].scope.clone().unwrap();
    rs.scope_spans.clear();
    let scope_spans = [field(1, &scope.encode_to_vec()), field(2, &span_bytes)].concat();
    let bytes = field(1, &[rs.encode_to_vec(), field(2, &scope_spans)].concat());
    let got = decode_export_request(&bytes).unwrap();
    assert_eq!(got, spans_from_otlp(request(vec![sample_span()])).unwrap());
}

proptest! {
    #[test]
    fn any_bytes_are_decoded_or_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_export_request(&bytes);
        // and inside a well-formed envelope, so the span reader sees them
        let rs = request(vec![]).remove(0);
        let scope = rs.scope_spans[0].scope.clone().unwrap();
        let scope_spans = [field(1, &scope.encode_to_vec()), field(2, &bytes)].concat();
        let mut rs = rs;
        rs.scope_spans.clear();
        let _ = decode_export_request(&field(1, &[rs.encode_to_vec(), field(2, &scope_spans)].concat()));
    }
}
