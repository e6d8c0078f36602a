//! How a collector tells a client to come back later: `google.rpc.Status`
//! with a `google.rpc.RetryInfo` detail, as the OTLP specification's
//! throttling section asks. Without RetryInfo an OTLP client must not retry
//! RESOURCE_EXHAUSTED, and would drop the batch.
use std::time::Duration;

use prost::Message;

/// How long a refused client is asked to wait.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// google.rpc.Status.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// google.rpc.RetryInfo.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}

impl RpcStatus {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        RpcStatus {
            code: code as i32,
            message: message.into(),
            details: vec![],
        }
    }

    /// Adds RetryInfo asking the client to wait [`RETRY_DELAY`].
    pub fn retry_later(mut self) -> Self {
        let info = RetryInfo {
            retry_delay: Some(prost_types::Duration {
                seconds: RETRY_DELAY.as_secs() as i64,
                nanos: 0,
            }),
        };
        self.details.push(prost_types::Any {
            type_url: RETRY_INFO_TYPE.into(),
            value: info.encode_to_vec(),
        });
        self
    }

    /// Proto3 JSON, for OTLP over HTTP with a JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        let details: Vec<_> = self
            .details
            .iter()
            .filter(|d| d.type_url == RETRY_INFO_TYPE)
            .filter_map(|d| RetryInfo::decode(d.value.as_slice()).ok())
            .map(|info| {
                let seconds = info.retry_delay.map_or(0, |d| d.seconds);
                serde_json::json!({"@type": RETRY_INFO_TYPE, "retryDelay": format!("{seconds}s")})
            })
            .collect();
        let mut json = serde_json::json!({"code": self.code, "message": self.message});
        if !details.is_empty() {
            json["details"] = details.into();
        }
        json
    }

    /// As a gRPC status: details in `grpc-status-details-bin` (where OTel
    /// Go and Java look) and RetryInfo also in `google.rpc.retryinfo-bin`
    /// (where the OTel Python exporter looks).
    pub fn into_grpc(self) -> tonic::Status {
        let code = tonic::Code::from(self.code);
        let message = self.message.clone();
        let retry_info = self
            .details
            .iter()
            .find(|d| d.type_url == RETRY_INFO_TYPE)
            .map(|d| d.value.clone());
        let mut status = tonic::Status::with_details(code, message, self.encode_to_vec().into());
        if let Some(info) = retry_info {
            status.metadata_mut().insert_bin(
                "google.rpc.retryinfo-bin",
                tonic::metadata::MetadataValue::from_bytes(&info),
            );
        }
        status
    }
}

/// The retry delay a status asks for, if any.
#[cfg(test)]
pub fn retry_delay(status: &RpcStatus) -> Option<Duration> {
    status
        .details
        .iter()
        .filter(|d| d.type_url == RETRY_INFO_TYPE)
        .find_map(|d| RetryInfo::decode(d.value.as_slice()).ok()?.retry_delay)
        .map(|d| Duration::from_secs(d.seconds.max(0) as u64))
}
