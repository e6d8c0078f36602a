//! Thrift's binary and compact protocols: readers that borrow from the input
//! buffer and bound every length by what is left of it, and writers into a
//! `Vec<u8>`. Only what Jaeger's and Zipkin's IDL use is here (no maps of
//! maps, no unions).

/// Thrift's wire types, as the binary protocol numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TType {
    Bool,
    Byte,
    Double,
    I16,
    I32,
    I64,
    Binary,
    Struct,
    Map,
    Set,
    List,
}

impl TType {
    fn from_binary(b: u8) -> Result<TType, ThriftError> {
        Ok(match b {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::Binary,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            other => return Err(ThriftError::BadType(other)),
        })
    }

    fn to_binary(self) -> u8 {
        match self {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::Binary => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
        }
    }

    fn from_compact(b: u8) -> Result<TType, ThriftError> {
        Ok(match b {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::Binary,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            other => return Err(ThriftError::BadType(other)),
        })
    }

    fn to_compact(self) -> u8 {
        match self {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::Binary => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
        }
    }
}

/// How deep structs and lists may nest before input is refused.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThriftError {
    #[error("truncated input: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("unknown thrift type {0}")]
    BadType(u8),
    #[error("length {0} exceeds the remaining input")]
    BadLength(i64),
    #[error("malformed varint")]
    BadVarint,
    #[error("string is not UTF-8")]
    BadUtf8,
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("bad message header: {0}")]
    BadMessage(&'static str),
    #[error("unexpected {what}: {value}")]
    Unexpected { what: &'static str, value: String },
}

/// Oneway calls are what agents receive; calls are what HTTP collectors get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Call = 1,
    Reply = 2,
    Exception = 3,
    Oneway = 4,
}

impl MessageType {
    fn from_i32(v: i32) -> Result<Self, ThriftError> {
        Ok(match v {
            1 => MessageType::Call,
            2 => MessageType::Reply,
            3 => MessageType::Exception,
            4 => MessageType::Oneway,
            _ => return Err(ThriftError::BadMessage("unknown message type")),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct MessageHeader<'a> {
    pub name: &'a str,
    pub kind: MessageType,
    pub seq_id: i32,
}

/// Reading one protocol. Strings and binaries borrow from the input.
pub trait Reader<'a> {
    fn read_message_begin(&mut self) -> Result<MessageHeader<'a>, ThriftError>;
    fn read_struct_begin(&mut self) -> Result<(), ThriftError>;
    fn read_struct_end(&mut self);
    /// The next field's type and id, or None at the struct's end.
    fn read_field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError>;
    fn read_bool(&mut self) -> Result<bool, ThriftError>;
    fn read_byte(&mut self) -> Result<i8, ThriftError>;
    fn read_i16(&mut self) -> Result<i16, ThriftError>;
    fn read_i32(&mut self) -> Result<i32, ThriftError>;
    fn read_i64(&mut self) -> Result<i64, ThriftError>;
    fn read_double(&mut self) -> Result<f64, ThriftError>;
    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError>;
    /// Element type and count; the count is at most the bytes left.
    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError>;
    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError>;
    /// Bytes consumed so far.
    fn position(&self) -> usize;

    fn read_string(&mut self) -> Result<&'a str, ThriftError> {
        std::str::from_utf8(self.read_binary()?).map_err(|_| ThriftError::BadUtf8)
    }

    /// Reads and discards a value of type `t`.
    fn skip(&mut self, t: TType) -> Result<(), ThriftError> {
        self.skip_depth(t, 0)
    }

    fn skip_depth(&mut self, t: TType, depth: usize) -> Result<(), ThriftError> {
        if depth > MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        match t {
            TType::Bool => drop(self.read_bool()?),
            TType::Byte => drop(self.read_byte()?),
            TType::Double => drop(self.read_double()?),
            TType::I16 => drop(self.read_i16()?),
            TType::I32 => drop(self.read_i32()?),
            TType::I64 => drop(self.read_i64()?),
            TType::Binary => drop(self.read_binary()?),
            TType::Struct => {
                self.read_struct_begin()?;
                while let Some((ft, _)) = self.read_field_begin()? {
                    self.skip_depth(ft, depth + 1)?;
                }
                self.read_struct_end();
            }
            TType::List | TType::Set => {
                let (et, n) = self.read_list_begin()?;
                for _ in 0..n {
                    self.skip_depth(et, depth + 1)?;
                }
            }
            TType::Map => {
                let (kt, vt, n) = self.read_map_begin()?;
                for _ in 0..n {
                    self.skip_depth(kt, depth + 1)?;
                    self.skip_depth(vt, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

struct Input<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ThriftError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(ThriftError::Truncated {
                offset: self.pos,
                needed: n - left,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, ThriftError> {
        Ok(self.take(1)?[0])
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn length(&self, n: i64) -> Result<usize, ThriftError> {
        if n < 0 || n as u64 > self.remaining() as u64 {
            return Err(ThriftError::BadLength(n));
        }
        Ok(n as usize)
    }
}

/// TBinaryProtocol (strict message headers, as Jaeger clients send).
pub struct BinaryReader<'a> {
    input: Input<'a>,
}

impl<'a> BinaryReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BinaryReader {
            input: Input { buf, pos: 0 },
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ThriftError> {
        Ok(self.input.take(N)?.try_into().expect("N bytes"))
    }
}

impl<'a> Reader<'a> for BinaryReader<'a> {
    fn read_message_begin(&mut self) -> Result<MessageHeader<'a>, ThriftError> {
        let word = self.read_i32()?;
        if word >= 0 {
            return Err(ThriftError::BadMessage("missing strict version header"));
        }
        if (word as u32) & 0xffff_0000 != 0x8001_0000 {
            return Err(ThriftError::BadMessage(
                "unsupported binary protocol version",
            ));
        }
        let kind = MessageType::from_i32(word & 0xff)?;
        let name = self.read_string()?;
        let seq_id = self.read_i32()?;
        Ok(MessageHeader { name, kind, seq_id })
    }
    fn read_struct_begin(&mut self) -> Result<(), ThriftError> {
        Ok(())
    }
    fn read_struct_end(&mut self) {}
    fn read_field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        let t = self.input.byte()?;
        if t == 0 {
            return Ok(None);
        }
        let t = TType::from_binary(t)?;
        Ok(Some((t, self.read_i16()?)))
    }
    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        Ok(self.input.byte()? != 0)
    }
    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(self.input.byte()? as i8)
    }
    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn read_double(&mut self) -> Result<f64, ThriftError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.array()?)))
    }
    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError> {
        let n = self.read_i32()?;
        let n = self.input.length(n as i64)?;
        self.input.take(n)
    }
    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let t = TType::from_binary(self.input.byte()?)?;
        let n = self.read_i32()?;
        Ok((t, self.input.length(n as i64)?))
    }
    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let k = TType::from_binary(self.input.byte()?)?;
        let v = TType::from_binary(self.input.byte()?)?;
        let n = self.read_i32()?;
        Ok((k, v, self.input.length(n as i64)?))
    }
    fn position(&self) -> usize {
        self.input.pos
    }
}

/// TCompactProtocol.
pub struct CompactReader<'a> {
    input: Input<'a>,
    last_field: i16,
    stack: Vec<i16>,
    /// A bool field carries its value in the field header.
    pending_bool: Option<bool>,
}

const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 1;

impl<'a> CompactReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        CompactReader {
            input: Input { buf, pos: 0 },
            last_field: 0,
            stack: Vec::new(),
            pending_bool: None,
        }
    }

    fn varint(&mut self) -> Result<u64, ThriftError> {
        let mut out: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.input.byte()?;
            if shift == 63 && b > 1 {
                return Err(ThriftError::BadVarint);
            }
            out |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ThriftError::BadVarint)
    }

    fn zigzag(&mut self) -> Result<i64, ThriftError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
}

impl<'a> Reader<'a> for CompactReader<'a> {
    fn read_message_begin(&mut self) -> Result<MessageHeader<'a>, ThriftError> {
        if self.input.byte()? != COMPACT_PROTOCOL_ID {
            return Err(ThriftError::BadMessage("not the compact protocol"));
        }
        let vt = self.input.byte()?;
        if vt & 0x1f != COMPACT_VERSION {
            return Err(ThriftError::BadMessage(
                "unsupported compact protocol version",
            ));
        }
        let kind = MessageType::from_i32((vt >> 5) as i32)?;
        let seq_id = self.varint()? as i32;
        let name = self.read_string()?;
        Ok(MessageHeader { name, kind, seq_id })
    }
    fn read_struct_begin(&mut self) -> Result<(), ThriftError> {
        if self.stack.len() > MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        self.stack.push(self.last_field);
        self.last_field = 0;
        Ok(())
    }
    fn read_struct_end(&mut self) {
        self.last_field = self.stack.pop().unwrap_or(0);
    }
    fn read_field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        let b = self.input.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let t = TType::from_compact(b & 0x0f)?;
        let delta = (b >> 4) as i16;
        let id = if delta == 0 {
            self.zigzag()? as i16
        } else {
            self.last_field.wrapping_add(delta)
        };
        self.last_field = id;
        if t == TType::Bool {
            self.pending_bool = Some(b & 0x0f == 1);
        }
        Ok(Some((t, id)))
    }
    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        match self.pending_bool.take() {
            Some(v) => Ok(v),
            None => Ok(self.input.byte()? == 1),
        }
    }
    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(self.input.byte()? as i8)
    }
    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        Ok(self.zigzag()? as i16)
    }
    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        Ok(self.zigzag()? as i32)
    }
    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        self.zigzag()
    }
    fn read_double(&mut self) -> Result<f64, ThriftError> {
        let b: [u8; 8] = self.input.take(8)?.try_into().expect("8 bytes");
        Ok(f64::from_bits(u64::from_le_bytes(b)))
    }
    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError> {
        let n = self.varint()?;
        let n = self.input.length(n.min(i64::MAX as u64) as i64)?;
        self.input.take(n)
    }
    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let b = self.input.byte()?;
        let t = TType::from_compact(b & 0x0f)?;
        let n = match b >> 4 {
            15 => self.varint()?.min(i64::MAX as u64) as i64,
            small => small as i64,
        };
        Ok((t, self.input.length(n)?))
    }
    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let n = self.varint()?.min(i64::MAX as u64) as i64;
        if n == 0 {
            return Ok((TType::Byte, TType::Byte, 0));
        }
        let kv = self.input.byte()?;
        Ok((
            TType::from_compact(kv >> 4)?,
            TType::from_compact(kv & 0x0f)?,
            self.input.length(n)?,
        ))
    }
    fn position(&self) -> usize {
        self.input.pos
    }
}

/// Writing one protocol into a byte vector.
pub trait Writer {
    fn write_message_begin(&mut self, name: &str, kind: MessageType, seq_id: i32);
    fn write_struct_begin(&mut self);
    fn write_struct_end(&mut self);
    fn write_field_begin(&mut self, t: TType, id: i16);
    fn write_field_stop(&mut self);
    fn write_bool(&mut self, v: bool);
    fn write_byte(&mut self, v: i8);
    fn write_i16(&mut self, v: i16);
    fn write_i32(&mut self, v: i32);
    fn write_i64(&mut self, v: i64);
    fn write_double(&mut self, v: f64);
    fn write_binary(&mut self, v: &[u8]);
    fn write_list_begin(&mut self, t: TType, n: usize);
    fn into_bytes(self) -> Vec<u8>;

    fn write_string(&mut self, v: &str) {
        self.write_binary(v.as_bytes())
    }
}

#[derive(Default)]
pub struct BinaryWriter {
    out: Vec<u8>,
}

impl Writer for BinaryWriter {
    fn write_message_begin(&mut self, name: &str, kind: MessageType, seq_id: i32) {
        self.write_i32((0x8001_0000u32 | kind as u32) as i32);
        self.write_string(name);
        self.write_i32(seq_id);
    }
    fn write_struct_begin(&mut self) {}
    fn write_struct_end(&mut self) {}
    fn write_field_begin(&mut self, t: TType, id: i16) {
        self.out.push(t.to_binary());
        self.write_i16(id);
    }
    fn write_field_stop(&mut self) {
        self.out.push(0);
    }
    fn write_bool(&mut self, v: bool) {
        self.out.push(v as u8);
    }
    fn write_byte(&mut self, v: i8) {
        self.out.push(v as u8);
    }
    fn write_i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn write_i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn write_i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn write_double(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    fn write_binary(&mut self, v: &[u8]) {
        self.write_i32(v.len() as i32);
        self.out.extend_from_slice(v);
    }
    fn write_list_begin(&mut self, t: TType, n: usize) {
        self.out.push(t.to_binary());
        self.write_i32(n as i32);
    }
    fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[derive(Default)]
pub struct CompactWriter {
    out: Vec<u8>,
    last_field: i16,
    stack: Vec<i16>,
    /// A bool field's header is written with its value.
    pending_bool_field: Option<i16>,
}

impl CompactWriter {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn field_header(&mut self, type_nibble: u8, id: i16) {
        let delta = id.wrapping_sub(self.last_field);
        if id > self.last_field && delta <= 15 {
            self.out.push(((delta as u8) << 4) | type_nibble);
        } else {
            self.out.push(type_nibble);
            self.zigzag(id as i64);
        }
        self.last_field = id;
    }
}

impl Writer for CompactWriter {
    fn write_message_begin(&mut self, name: &str, kind: MessageType, seq_id: i32) {
        self.out.push(COMPACT_PROTOCOL_ID);
        self.out.push(COMPACT_VERSION | ((kind as u8) << 5));
        self.varint(seq_id as u32 as u64);
        self.write_string(name);
    }
    fn write_struct_begin(&mut self) {
        self.stack.push(self.last_field);
        self.last_field = 0;
    }
    fn write_struct_end(&mut self) {
        self.last_field = self.stack.pop().unwrap_or(0);
    }
    fn write_field_begin(&mut self, t: TType, id: i16) {
        if t == TType::Bool {
            self.pending_bool_field = Some(id);
        } else {
            self.field_header(t.to_compact(), id);
        }
    }
    fn write_field_stop(&mut self) {
        self.out.push(0);
    }
    fn write_bool(&mut self, v: bool) {
        let nibble = if v { 1 } else { 2 };
        match self.pending_bool_field.take() {
            Some(id) => self.field_header(nibble, id),
            None => self.out.push(nibble),
        }
    }
    fn write_byte(&mut self, v: i8) {
        self.out.push(v as u8);
    }
    fn write_i16(&mut self, v: i16) {
        self.zigzag(v as i64);
    }
    fn write_i32(&mut self, v: i32) {
        self.zigzag(v as i64);
    }
    fn write_i64(&mut self, v: i64) {
        self.zigzag(v);
    }
    fn write_double(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn write_binary(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
    }
    fn write_list_begin(&mut self, t: TType, n: usize) {
        if n < 15 {
            self.out.push(((n as u8) << 4) | t.to_compact());
        } else {
            self.out.push(0xf0 | t.to_compact());
            self.varint(n as u64);
        }
    }
    fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

pub fn unexpected(what: &'static str, value: impl ToString) -> ThriftError {
    ThriftError::Unexpected {
        what,
        value: value.to_string(),
    }
}

/// Reads the fields of a struct, handing each (type, id) to `field`, which
/// returns false for fields it does not know; those are skipped.
pub fn read_struct<'a, R: Reader<'a>>(
    r: &mut R,
    mut field: impl FnMut(&mut R, TType, i16) -> Result<bool, ThriftError>,
) -> Result<(), ThriftError> {
    r.read_struct_begin()?;
    while let Some((t, id)) = r.read_field_begin()? {
        if !field(r, t, id)? {
            r.skip(t)?;
        }
    }
    r.read_struct_end();
    Ok(())
}

pub fn read_list<'a, R: Reader<'a>, T>(
    r: &mut R,
    elem: TType,
    mut item: impl FnMut(&mut R) -> Result<T, ThriftError>,
) -> Result<Vec<T>, ThriftError> {
    let (t, n) = r.read_list_begin()?;
    if t != elem && n > 0 {
        return Err(unexpected("list element type", format!("{t:?}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(item(r)?);
    }
    Ok(out)
}
