use std::fmt;
use std::str::FromStr;

/// A 128-bit trace id. Jaeger clients may send 64-bit ids; those have the high
/// half zero and print as 16 hex digits, as Jaeger does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct TraceId(pub u128);

/// A 64-bit span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct SpanId(pub u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdParseError {
    #[error("id is empty")]
    Empty,
    #[error("id {0:?} is longer than {1} hex digits")]
    TooLong(String, usize),
    #[error("id {0:?} is not hexadecimal")]
    NotHex(String),
    #[error("id has {0} bytes, expected {1}")]
    WrongLength(usize, usize),
}

impl TraceId {
    pub fn new(high: u64, low: u64) -> Self {
        TraceId(((high as u128) << 64) | low as u128)
    }
    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }
    pub fn low(self) -> u64 {
        self.0 as u64
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// Big-endian 16 bytes, as api_v2 protobuf and OTLP carry it.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
    /// Accepts the 16-byte form, and the 8-byte form of old 64-bit ids.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdParseError> {
        match bytes.len() {
            16 => Ok(TraceId(u128::from_be_bytes(
                bytes.try_into().expect("16 bytes"),
            ))),
            8 => Ok(TraceId(
                u64::from_be_bytes(bytes.try_into().expect("8 bytes")) as u128,
            )),
            n => Err(IdParseError::WrongLength(n, 16)),
        }
    }
}

impl SpanId {
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdParseError> {
        match bytes.len() {
            8 => Ok(SpanId(u64::from_be_bytes(
                bytes.try_into().expect("8 bytes"),
            ))),
            n => Err(IdParseError::WrongLength(n, 8)),
        }
    }
}

impl fmt::Display for TraceId {
    /// 16 lowercase hex digits when the high half is zero, 32 otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.high() == 0 {
            write!(f, "{:016x}", self.low())
        } else {
            write!(f, "{:032x}", self.0)
        }
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

fn parse_hex(s: &str, max_digits: usize) -> Result<u128, IdParseError> {
    if s.is_empty() {
        return Err(IdParseError::Empty);
    }
    if s.len() > max_digits {
        return Err(IdParseError::TooLong(s.to_string(), max_digits));
    }
    u128::from_str_radix(s, 16)
        .ok()
        .filter(|_| s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| IdParseError::NotHex(s.to_string()))
}

impl FromStr for TraceId {
    type Err = IdParseError;
    /// Parses 1 to 32 hex digits, either case; shorter ids are zero-extended.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 32).map(TraceId)
    }
}

impl FromStr for SpanId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 16).map(|v| SpanId(v as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_prints_short_form_when_high_half_is_zero() {
        assert_eq!(TraceId(1).to_string(), "0000000000000001");
        assert_eq!(
            TraceId::new(1, 2).to_string(),
            "00000000000000010000000000000002"
        );
    }

    #[test]
    fn trace_id_parses_what_it_prints_and_rejects_junk() {
        for id in [TraceId(0xabc), TraceId::new(u64::MAX, 7)] {
            assert_eq!(id.to_string().parse::<TraceId>(), Ok(id));
        }
        assert_eq!("ABC".parse::<TraceId>(), Ok(TraceId(0xabc)));
        assert!(matches!(
            "xyz".parse::<TraceId>(),
            Err(IdParseError::NotHex(_))
        ));
        assert!(matches!(
            "+1".parse::<TraceId>(),
            Err(IdParseError::NotHex(_))
        ));
        assert!(matches!(
            "0".repeat(33).parse::<TraceId>(),
            Err(IdParseError::TooLong(..))
        ));
        assert_eq!("".parse::<TraceId>(), Err(IdParseError::Empty));
    }

    #[test]
    fn ids_round_trip_through_bytes() {
        let t = TraceId::new(0x0102030405060708, 0x090a0b0c0d0e0f10);
        assert_eq!(TraceId::from_slice(&t.to_bytes()), Ok(t));
        assert_eq!(TraceId::from_slice(&7u64.to_be_bytes()), Ok(TraceId(7)));
        assert_eq!(SpanId::from_slice(&SpanId(9).to_bytes()), Ok(SpanId(9)));
        assert_eq!(
            SpanId::from_slice(&[1, 2]),
            Err(IdParseError::WrongLength(2, 8))
        );
    }
}
