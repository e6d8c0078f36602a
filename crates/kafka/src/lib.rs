//! Streaming: the collector's Kafka span writer and the ingester that
//! consumes the topic into storage. rdkafka stays inside this crate.
pub mod encoding;
pub mod ingester;
pub mod options;
pub mod writer;

pub use encoding::Encoding;
pub use ingester::{Ingester, IngesterError, IngesterMetrics};
pub use options::{ConsumerOptions, OptionsError, ProducerOptions};
pub use writer::{KafkaWriter, WriterStats};
