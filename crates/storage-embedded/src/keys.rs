//! Byte keys whose order is the order queries need. Integers are big-endian;
//! names are length-prefixed; start times in the service indexes are
//! inverted so that ascending keys run newest first.

use spoor_model::SpanKind;

#[derive(Default)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Key(Vec::with_capacity(48))
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u128(mut self, v: u128) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Names longer than 65,535 bytes are cut there.
    pub fn str(mut self, s: &str) -> Self {
        let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.0
            .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn span(trace: u128, seq: u64) -> Vec<u8> {
        Key::new().u128(trace).u64(seq).bytes()
    }
    pub fn by_service(service: &str, start: u64, trace: u128) -> Vec<u8> {
        Key::new()
            .str(service)
            .u64(u64::MAX - start)
            .u128(trace)
            .bytes()
    }
    pub fn by_operation(service: &str, operation: &str, start: u64, trace: u128) -> Vec<u8> {
        Key::new()
            .str(service)
            .str(operation)
            .u64(u64::MAX - start)
            .u128(trace)
            .bytes()
    }
    pub fn by_tag(service: &str, key: &str, value: &str, start: u64, trace: u128) -> Vec<u8> {
        Key::new()
            .str(service)
            .str(key)
            .str(value)
            .u64(u64::MAX - start)
            .u128(trace)
            .bytes()
    }
    /// Ordered by duration, then start time.
    pub fn by_duration(service: &str, duration: u64, start: u64, trace: u128) -> Vec<u8> {
        Key::new()
            .str(service)
            .u64(duration)
            .u64(start)
            .u128(trace)
            .bytes()
    }
    pub fn operation(service: &str, kind: SpanKind, operation: &str) -> Vec<u8> {
        Key::new()
            .str(service)
            .str(kind.as_str())
            .str(operation)
            .bytes()
    }
}

/// Reads the length-prefixed names of `bytes` in order.
fn names(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let n = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        let end = (2 + n).min(bytes.len());
        out.push(String::from_utf8_lossy(&bytes[2..end]).into_owned());
        bytes = &bytes[end..];
    }
    out
}

pub fn split_operation_key(key: &[u8]) -> (String, SpanKind, String) {
    let mut parts = names(key).into_iter();
    let service = parts.next().unwrap_or_default();
    let kind = SpanKind::parse(&parts.next().unwrap_or_default());
    (service, kind, parts.next().unwrap_or_default())
}

/// (service, operation) of a time-index value.
pub fn split_names(value: &[u8]) -> (String, String) {
    let mut parts = names(value).into_iter();
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

/// (start, trace, sequence) of a time-index key.
pub fn split_time_key(key: &[u8]) -> (u64, u128, u64) {
    let start = u64::from_be_bytes(key[0..8].try_into().expect("time key"));
    let trace = u128::from_be_bytes(key[8..24].try_into().expect("time key"));
    let seq = u64::from_be_bytes(key[24..32].try_into().expect("time key"));
    (start, trace, seq)
}

/// (start, trace) of a duration-index key of `service`.
pub fn split_duration_key(service: &str, key: &[u8]) -> (u64, u128) {
    let rest = &key[2 + service.len().min(u16::MAX as usize) + 8..];
    let start = u64::from_be_bytes(rest[0..8].try_into().expect("duration key"));
    (start, trailing_trace_id(key))
}

/// The trace id that ends every index key.
pub fn trailing_trace_id(key: &[u8]) -> u128 {
    u128::from_be_bytes(key[key.len() - 16..].try_into().expect("index key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_the_way_queries_read_them() {
        assert!(
            Key::by_service("svc", 200, 1) < Key::by_service("svc", 100, 1),
            "newest first"
        );
        assert!(
            Key::by_service("a", 0, 0) < Key::by_service("ab", u64::MAX, 0),
            "length prefix keeps names apart"
        );
        assert!(Key::span(1, u64::MAX) < Key::span(2, 0));
        let (service, kind, op) =
            split_operation_key(&Key::operation("svc", SpanKind::Server, "GET /"));
        assert_eq!(
            (service.as_str(), kind, op.as_str()),
            ("svc", SpanKind::Server, "GET /")
        );
        let key = Key::new().u64(5).u128(7).u64(9).bytes();
        assert_eq!(split_time_key(&key), (5, 7, 9));
        assert_eq!(trailing_trace_id(&Key::by_operation("s", "o", 3, 42)), 42);
        assert!(Key::by_duration("s", 5, 900, 1) < Key::by_duration("s", 6, 100, 1));
        assert_eq!(
            split_duration_key("svc", &Key::by_duration("svc", 5, 900, 77)),
            (900, 77)
        );
        assert!(
            Key::by_tag("s", "k", "v", 200, 1) < Key::by_tag("s", "k", "v", 100, 1),
            "newest first"
        );
    }
}
