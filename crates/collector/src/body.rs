//! Request bodies of the HTTP receivers: `Content-Encoding: gzip` inflated
//! with a bound on the inflated size, so a small bomb cannot take memory.
use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{Outcome, ProcessError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("invalid gzip body: {0}")]
    BadGzip(String),
    #[error("decompressed body exceeds the {0}-byte limit")]
    TooLarge(usize),
    #[error("unsupported content encoding {0:?}; use gzip or none")]
    UnsupportedEncoding(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::BadGzip(_) => StatusCode::BAD_REQUEST,
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The `reason` label of the rejected-requests counter.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::BadGzip(_) => "undecodable",
            BodyError::TooLarge(_) => "too_large",
            BodyError::UnsupportedEncoding(_) => "unsupported_encoding",
        }
    }
}

/// The body as sent, inflated when gzip-encoded, at most `max` bytes.
pub fn decoded(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, BodyError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| BodyError::BadGzip(e.to_string()))?;
            if out.len() > max {
                return Err(BodyError::TooLarge(max));
            }
            Ok(out.into())
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

/// The answer of the Jaeger and Zipkin HTTP receivers: 202 when every span was
/// taken, 400 naming the rejected spans (the rest were kept), 429 when the
/// queue is full, 503 when acknowledging after the write and it failed.
pub fn outcome_response(result: Result<Outcome, ProcessError>) -> Response {
    match result {
        Ok(outcome) if outcome.rejected > 0 => {
            (StatusCode::BAD_REQUEST, outcome.message).into_response()
        }
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e @ ProcessError::QueueFull) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after())],
            e.to_string(),
        )
            .into_response(),
        Err(e @ ProcessError::WriteFailed(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after())],
            e.to_string(),
        )
            .into_response(),
    }
}

fn retry_after() -> String {
    crate::retry::RETRY_DELAY.as_secs().to_string()
}
