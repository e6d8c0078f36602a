//! Jaeger Thrift (jaeger.thrift, agent.thrift) over the binary and compact
//! protocols, to and from the model. The IDL is in proto/thrift.

pub mod jaeger;
pub mod protocol;

pub use jaeger::{
    ClientStats, DecodedBatch, Protocol, decode_batch, decode_emit_batch, encode_batch,
    encode_emit_batch,
};
pub use protocol::ThriftError;

#[cfg(test)]
mod tests;
