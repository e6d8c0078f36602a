//! A reader of protobuf-encoded OTLP trace requests that builds model spans
//! straight from the received bytes: no intermediate message structs, no id
//! vectors, tag keys placed inline. Strings are checked for UTF-8 as prost
//! checks them; unknown fields are skipped; fields may come in any order and
//! a message field given twice is merged, as protobuf defines it (the
//! occurrences are read in order into one value).
use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_varint, skip_field};

/// A malformed request: the whole request is refused, as prost refuses it.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed protobuf: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("malformed protobuf: field {field} has wire type {found:?}")]
    WireType { field: u32, found: WireType },
    #[error("malformed protobuf: invalid field key {0}")]
    Key(u64),
    #[error("malformed protobuf: a field runs past the end of its message")]
    Truncated,
    #[error("invalid string: data is not UTF-8 encoded")]
    Utf8,
    #[error("attribute values nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
}

/// Array and map values nested deeper than this refuse the request (prost's
/// own limit is 100 messages, counted from the request).
pub const MAX_VALUE_DEPTH: usize = 32;

/// One field of a message.
#[derive(Clone, Copy)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Field<'a> {
    fn wire_type(&self) -> WireType {
        match self {
            Field::Varint(_) => WireType::Varint,
            Field::Fixed64(_) => WireType::SixtyFourBit,
            Field::Fixed32(_) => WireType::ThirtyTwoBit,
            Field::Bytes(_) => WireType::LengthDelimited,
        }
    }

    fn mismatch(&self, field: u32) -> WireError {
        WireError::WireType {
            field,
            found: self.wire_type(),
        }
    }

    #[inline]
    pub fn bytes(self, field: u32) -> Result<&'a [u8], WireError> {
        match self {
            Field::Bytes(b) => Ok(b),
            other => Err(other.mismatch(field)),
        }
    }

    #[inline]
    pub fn str(self, field: u32) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(field)?).map_err(|_| WireError::Utf8)
    }

    #[inline]
    pub fn varint(self, field: u32) -> Result<u64, WireError> {
        match self {
            Field::Varint(v) => Ok(v),
            other => Err(other.mismatch(field)),
        }
    }

    #[inline]
    pub fn fixed64(self, field: u32) -> Result<u64, WireError> {
        match self {
            Field::Fixed64(v) => Ok(v),
            other => Err(other.mismatch(field)),
        }
    }

    #[inline]
    pub fn fixed32(self, field: u32) -> Result<u32, WireError> {
        match self {
            Field::Fixed32(v) => Ok(v),
            other => Err(other.mismatch(field)),
        }
    }
}

/// The fields of one message, in the order they were written; groups (a
/// proto2 form no OTLP sender uses) are skipped.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    #[inline]
    fn read(&mut self) -> Result<Option<(u32, Field<'a>)>, WireError> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let key = varint(&mut self.buf)?;
            let tag = match u32::try_from(key >> 3) {
                Ok(tag) if tag > 0 => tag,
                _ => return Err(WireError::Key(key)),
            };
            let field = match key & 7 {
                0 => Field::Varint(varint(&mut self.buf)?),
                1 => Field::Fixed64(self.take_fixed::<8>()?),
                5 => Field::Fixed32(self.take_fixed::<4>()? as u32),
                2 => {
                    let len = varint(&mut self.buf)?;
                    if len > self.buf.len() as u64 {
                        return Err(WireError::Truncated);
                    }
                    let (value, rest) = self.buf.split_at(len as usize);
                    self.buf = rest;
                    Field::Bytes(value)
                }
                wire @ (3 | 4) => {
                    let wire_type = WireType::try_from(wire).map_err(WireError::Malformed)?;
                    skip_field(wire_type, tag, &mut self.buf, DecodeContext::default())?;
                    continue;
                }
                _ => return Err(WireError::Key(key)),
            };
            return Ok(Some((tag, field)));
        }
    }

    #[inline]
    fn take_fixed<const N: usize>(&mut self) -> Result<u64, WireError> {
        if self.buf.len() < N {
            return Err(WireError::Truncated);
        }
        let mut le = [0u8; 8];
        le[..N].copy_from_slice(&self.buf[..N]);
        self.buf.advance(N);
        Ok(u64::from_le_bytes(le))
    }
}

/// A varint; most are one byte.
#[inline]
fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    if let Some((&b, rest)) = buf.split_first()
        && b < 0x80
    {
        *buf = rest;
        return Ok(b.into());
    }
    Ok(decode_varint(buf)?)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.read();
        if item.is_err() {
            // one error ends the message
            self.buf = &[];
        }
        item.transpose()
    }
}

/// Counts the fields numbered `tag` in `buf`, reading headers only.
pub fn count(buf: &[u8], tag: u32) -> Result<usize, WireError> {
    let mut n = 0;
    for field in Fields::new(buf) {
        n += usize::from(field?.0 == tag);
    }
    Ok(n)
}
