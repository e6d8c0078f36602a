//! Message payloads: one span per message, as Jaeger's Kafka writer sends
//! them. `protobuf` is the api_v2 `Span` with its process (Jaeger's
//! default), `json` its proto-JSON form, and `otlp_proto` an OTLP
//! `TracesData` holding the span (what Jaeger v2 writes).
use clap::ValueEnum;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;
use spoor_model::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    Protobuf,
    Json,
    #[value(name = "otlp_proto", alias = "otlp-proto")]
    OtlpProto,
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable {encoding:?} message: {message}")]
pub struct DecodeError {
    pub encoding: Encoding,
    pub message: String,
}

impl Encoding {
    pub fn encode(self, span: &Span) -> Vec<u8> {
        match self {
            Encoding::Protobuf => spoor_proto::span_to_proto(span).encode_to_vec(),
            Encoding::Json => {
                serde_json::to_vec(&spoor_proto::jsonpb::span_to_json(span)).expect("json")
            }
            Encoding::OtlpProto => TracesData {
                resource_spans: spoor_codec::otlp::spans_to_otlp(std::slice::from_ref(span)),
            }
            .encode_to_vec(),
        }
    }

    /// The spans of one message: one for Jaeger's encodings, any number
    /// for OTLP.
    pub fn decode(self, payload: &[u8]) -> Result<Vec<Span>, DecodeError> {
        let fail = |message: String| DecodeError {
            encoding: self,
            message,
        };
        match self {
            Encoding::Protobuf => {
                let proto =
                    spoor_proto::api_v2::Span::decode(payload).map_err(|e| fail(e.to_string()))?;
                let span =
                    spoor_proto::span_from_proto(proto, None).map_err(|e| fail(e.to_string()))?;
                Ok(vec![span])
            }
            Encoding::Json => spoor_proto::jsonpb::span_from_json(payload)
                .map(|s| vec![s])
                .map_err(|e| fail(e.to_string())),
            Encoding::OtlpProto => {
                // TracesData has ExportTraceServiceRequest's fields
                let (spans, errors) = spoor_codec::otlp::decode_export_request(payload)
                    .map_err(|e| fail(e.to_string()))?;
                match errors.first() {
                    Some(e) => Err(fail(e.to_string())),
                    None => Ok(spans),
                }
            }
        }
    }
}

/// The message key: the trace id in hex, so a trace stays in one partition.
pub fn key(span: &Span) -> String {
    span.trace_id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_spans() -> Vec<Span> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/jaeger-integration/traces/example_trace.json"
        );
        spoor_proto::jsonpb::trace_from_json(&std::fs::read_to_string(path).unwrap())
            .unwrap()
            .spans
    }

    #[test]
    fn jaeger_encodings_round_trip_every_field() {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            for span in fixture_spans() {
                let back = encoding.decode(&encoding.encode(&span)).unwrap();
                assert_eq!(back, std::slice::from_ref(&span), "{encoding:?}");
            }
        }
    }

    #[test]
    fn otlp_keeps_ids_names_times_and_tags() {
        for span in fixture_spans() {
            let back = Encoding::OtlpProto
                .decode(&Encoding::OtlpProto.encode(&span))
                .unwrap();
            assert_eq!(back.len(), 1);
            let b = &back[0];
            assert_eq!(
                (b.trace_id, b.span_id, &b.operation_name),
                (span.trace_id, span.span_id, &span.operation_name)
            );
            assert_eq!((b.start_time, b.duration), (span.start_time, span.duration));
            assert_eq!(b.process.service_name, span.process.service_name);
            for tag in &span.tags {
                assert!(b.tags.contains(tag), "{tag:?} lost");
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for encoding in [Encoding::Protobuf, Encoding::Json, Encoding::OtlpProto] {
            let err = encoding.decode(b"\xff\x00garbage{").unwrap_err();
            assert_eq!(err.encoding, encoding);
        }
    }

    #[test]
    fn keys_are_hex_trace_ids() {
        let span = &fixture_spans()[0];
        assert_eq!(key(span), span.trace_id.to_string());
    }
}
