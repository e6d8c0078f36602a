//! Producer and consumer options with Jaeger's `--kafka.producer.*` /
//! `--kafka.consumer.*` names (and `KAFKA_PRODUCER_*` / `KAFKA_CONSUMER_*`
//! variables), turned into librdkafka settings in one place.
use std::time::Duration;

use clap::{Args, ValueEnum};
use rdkafka::ClientConfig;

use crate::encoding::Encoding;

/// Options that cannot make a working Kafka client; found before any
/// connection is tried.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("--{prefix}plaintext.username is required with --{prefix}authentication=plaintext")]
    MissingUsername { prefix: &'static str },
    #[error("TLS authentication needs --{prefix}tls.cert and --{prefix}tls.key")]
    MissingClientCertificate { prefix: &'static str },
    #[error("--kafka.producer.idempotent needs --kafka.producer.required-acks=all")]
    IdempotentNeedsAllAcks,
    #[error(transparent)]
    Tls(#[from] spoor_tls::TlsError),
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{s:?}: expected librdkafka KEY=VALUE"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Authentication {
    None,
    /// TLS client certificate (--*.tls.cert / --*.tls.key).
    Tls,
    /// SASL PLAIN or SCRAM with --*.plaintext.username / password.
    Plaintext,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

/// Connection, authentication and passthrough settings shared by the
/// producer and the consumer, under their own prefixes.
macro_rules! client_options {
    ($name:ident, $p:literal, $e:literal, $client:literal) => {
        #[derive(Args, Clone, Debug)]
        pub struct $name {
            #[doc = concat!("Comma-separated Kafka brokers of the ", $client, ".")]
            #[arg(id = concat!($p, "brokers"), long = concat!($p, "brokers"), env = concat!($e, "BROKERS"), default_value = "127.0.0.1:9092", value_delimiter = ',')]
            pub brokers: Vec<String>,
            #[doc = "How the client authenticates to the brokers."]
            #[arg(id = concat!($p, "authentication"), long = concat!($p, "authentication"), env = concat!($e, "AUTHENTICATION"), value_enum, default_value = "none")]
            pub authentication: Authentication,
            #[doc = "SASL user (plaintext authentication)."]
            #[arg(id = concat!($p, "plaintext.username"), long = concat!($p, "plaintext.username"), env = concat!($e, "PLAINTEXT_USERNAME"), default_value = "")]
            pub username: String,
            #[doc = "SASL password (plaintext authentication)."]
            #[arg(id = concat!($p, "plaintext.password"), long = concat!($p, "plaintext.password"), env = concat!($e, "PLAINTEXT_PASSWORD"), default_value = "", hide_env_values = true)]
            pub password: String,
            #[doc = "SASL mechanism (plaintext authentication)."]
            #[arg(id = concat!($p, "plaintext.mechanism"), long = concat!($p, "plaintext.mechanism"), env = concat!($e, "PLAINTEXT_MECHANISM"), value_enum, default_value = "PLAIN")]
            pub mechanism: SaslMechanism,
            #[doc = "Connect with TLS."]
            #[arg(id = concat!($p, "tls.enabled"), long = concat!($p, "tls.enabled"), env = concat!($e, "TLS_ENABLED"), default_value_t = false)]
            pub tls_enabled: bool,
            #[doc = "CA certificate (PEM) of the brokers."]
            #[arg(id = concat!($p, "tls.ca"), long = concat!($p, "tls.ca"), env = concat!($e, "TLS_CA"))]
            pub tls_ca: Option<std::path::PathBuf>,
            #[doc = "Client certificate (PEM) for TLS authentication."]
            #[arg(id = concat!($p, "tls.cert"), long = concat!($p, "tls.cert"), env = concat!($e, "TLS_CERT"))]
            pub tls_cert: Option<std::path::PathBuf>,
            #[doc = "Client key (PEM) for TLS authentication."]
            #[arg(id = concat!($p, "tls.key"), long = concat!($p, "tls.key"), env = concat!($e, "TLS_KEY"))]
            pub tls_key: Option<std::path::PathBuf>,
            #[doc = "Do not check the brokers' host names against their certificates."]
            #[arg(id = concat!($p, "tls.skip-host-verify"), long = concat!($p, "tls.skip-host-verify"), env = concat!($e, "TLS_SKIP_HOST_VERIFY"), default_value_t = false)]
            pub tls_skip_host_verify: bool,
            #[doc = "Raw librdkafka settings, KEY=VALUE, repeatable; applied last."]
            #[arg(id = concat!($p, "config"), long = concat!($p, "config"), env = concat!($e, "CONFIG"), value_parser = key_value, value_delimiter = ';')]
            pub config: Vec<(String, String)>,
        }

        impl $name {
            fn apply(&self, c: &mut ClientConfig) -> Result<(), OptionsError> {
                c.set("bootstrap.servers", self.brokers.join(","));
                let settings = spoor_tls::ClientTls {
                    enabled: self.tls_enabled || self.authentication == Authentication::Tls,
                    ca: self.tls_ca.clone(),
                    cert: self.tls_cert.clone(),
                    key: self.tls_key.clone(),
                    server_name: None,
                    skip_host_verify: self.tls_skip_host_verify,
                }
                .checked($p, false)?;
                let tls = settings.enabled;
                let sasl = self.authentication == Authentication::Plaintext;
                c.set(
                    "security.protocol",
                    match (tls, sasl) {
                        (false, false) => "plaintext",
                        (true, false) => "ssl",
                        (false, true) => "sasl_plaintext",
                        (true, true) => "sasl_ssl",
                    },
                );
                if sasl {
                    if self.username.is_empty() {
                        return Err(OptionsError::MissingUsername { prefix: $p });
                    }
                    c.set(
                        "sasl.mechanism",
                        match self.mechanism {
                            SaslMechanism::Plain => "PLAIN",
                            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
                        },
                    );
                    c.set("sasl.username", &self.username);
                    c.set("sasl.password", &self.password);
                }
                let path = |p: &std::path::PathBuf| p.display().to_string();
                if self.authentication == Authentication::Tls && settings.cert.is_none() {
                    return Err(OptionsError::MissingClientCertificate { prefix: $p });
                }
                if tls {
                    if let Some(ca) = &settings.ca {
                        c.set("ssl.ca.location", path(ca));
                    }
                    if let (Some(cert), Some(key)) = (&settings.cert, &settings.key) {
                        c.set("ssl.certificate.location", path(cert));
                        c.set("ssl.key.location", path(key));
                    }
                    if settings.skip_host_verify {
                        c.set("ssl.endpoint.identification.algorithm", "none");
                        c.set("enable.ssl.certificate.verification", "false");
                    }
                }
                for (k, v) in &self.config {
                    c.set(k, v);
                }
                Ok(())
            }
        }
    };
}

client_options!(
    ProducerClient,
    "kafka.producer.",
    "KAFKA_PRODUCER_",
    "producer"
);
client_options!(
    ConsumerClient,
    "kafka.consumer.",
    "KAFKA_CONSUMER_",
    "consumer"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RequiredAcks {
    /// Fire and forget.
    Noack,
    /// The partition leader has it.
    Local,
    /// Every in-sync replica has it.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Args, Clone, Debug)]
pub struct ProducerOptions {
    #[command(flatten)]
    pub client: ProducerClient,
    /// Topic spans are written to.
    #[arg(
        id = "kafka.producer.topic",
        long = "kafka.producer.topic",
        env = "KAFKA_PRODUCER_TOPIC",
        default_value = "jaeger-spans"
    )]
    pub topic: String,
    /// Message encoding: protobuf (Jaeger's default), json or otlp_proto.
    #[arg(
        id = "kafka.producer.encoding",
        long = "kafka.producer.encoding",
        env = "KAFKA_PRODUCER_ENCODING",
        value_enum,
        default_value = "protobuf"
    )]
    pub encoding: Encoding,
    /// Acknowledgement the producer waits for.
    #[arg(
        id = "kafka.producer.required-acks",
        long = "kafka.producer.required-acks",
        env = "KAFKA_PRODUCER_REQUIRED_ACKS",
        value_enum,
        default_value = "all"
    )]
    pub required_acks: RequiredAcks,
    #[arg(
        id = "kafka.producer.compression",
        long = "kafka.producer.compression",
        env = "KAFKA_PRODUCER_COMPRESSION",
        value_enum,
        default_value = "none"
    )]
    pub compression: Compression,
    /// Compression level (-1: the codec's default).
    #[arg(id = "kafka.producer.compression-level", long = "kafka.producer.compression-level", env = "KAFKA_PRODUCER_COMPRESSION_LEVEL", default_value_t = -1)]
    pub compression_level: i32,
    /// How long messages wait to fill a batch.
    #[arg(id = "kafka.producer.batch-linger", long = "kafka.producer.batch-linger", env = "KAFKA_PRODUCER_BATCH_LINGER", default_value = "5ms", value_parser = spoor_model::parse_go_duration)]
    pub batch_linger: Duration,
    /// Bytes per batch (0: librdkafka's default).
    #[arg(
        id = "kafka.producer.batch-size",
        long = "kafka.producer.batch-size",
        env = "KAFKA_PRODUCER_BATCH_SIZE",
        default_value_t = 0
    )]
    pub batch_size: usize,
    /// Messages per batch (0: librdkafka's default).
    #[arg(
        id = "kafka.producer.batch-max-messages",
        long = "kafka.producer.batch-max-messages",
        env = "KAFKA_PRODUCER_BATCH_MAX_MESSAGES",
        default_value_t = 0
    )]
    pub batch_max_messages: usize,
    /// Largest message; bigger spans are refused and counted.
    #[arg(
        id = "kafka.producer.max-message-bytes",
        long = "kafka.producer.max-message-bytes",
        env = "KAFKA_PRODUCER_MAX_MESSAGE_BYTES",
        default_value_t = 1_000_000
    )]
    pub max_message_bytes: usize,
    /// Idempotent producer: no duplicates from the producer's own retries.
    #[arg(id = "kafka.producer.idempotent", long = "kafka.producer.idempotent", env = "KAFKA_PRODUCER_IDEMPOTENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub idempotent: bool,
    /// How long a write waits for the brokers' acknowledgement.
    #[arg(id = "kafka.producer.timeout", long = "kafka.producer.timeout", env = "KAFKA_PRODUCER_TIMEOUT", default_value = "30s", value_parser = spoor_model::parse_go_duration)]
    pub timeout: Duration,
}

impl ProducerOptions {
    pub fn client_config(&self) -> Result<ClientConfig, OptionsError> {
        let mut c = ClientConfig::new();
        c.set(
            "acks",
            match self.required_acks {
                RequiredAcks::Noack => "0",
                RequiredAcks::Local => "1",
                RequiredAcks::All => "all",
            },
        );
        if self.idempotent && self.required_acks != RequiredAcks::All {
            return Err(OptionsError::IdempotentNeedsAllAcks);
        }
        c.set("enable.idempotence", self.idempotent.to_string());
        c.set(
            "compression.codec",
            match self.compression {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Snappy => "snappy",
                Compression::Lz4 => "lz4",
                Compression::Zstd => "zstd",
            },
        );
        c.set("compression.level", self.compression_level.to_string());
        c.set("linger.ms", self.batch_linger.as_millis().to_string());
        if self.batch_size > 0 {
            c.set("batch.size", self.batch_size.to_string());
        }
        if self.batch_max_messages > 0 {
            c.set("batch.num.messages", self.batch_max_messages.to_string());
        }
        c.set("message.max.bytes", self.max_message_bytes.to_string());
        c.set("message.timeout.ms", self.timeout.as_millis().to_string());
        self.client.apply(&mut c)?;
        Ok(c)
    }
}

#[derive(Args, Clone, Debug)]
pub struct ConsumerOptions {
    #[command(flatten)]
    pub client: ConsumerClient,
    /// Topic spans are read from.
    #[arg(
        id = "kafka.consumer.topic",
        long = "kafka.consumer.topic",
        env = "KAFKA_CONSUMER_TOPIC",
        default_value = "jaeger-spans"
    )]
    pub topic: String,
    /// Consumer group: ingesters of one group share the partitions.
    #[arg(
        id = "kafka.consumer.group-id",
        long = "kafka.consumer.group-id",
        env = "KAFKA_CONSUMER_GROUP_ID",
        default_value = "jaeger-ingester"
    )]
    pub group_id: String,
    #[arg(
        id = "kafka.consumer.client-id",
        long = "kafka.consumer.client-id",
        env = "KAFKA_CONSUMER_CLIENT_ID",
        default_value = "jaeger-ingester"
    )]
    pub client_id: String,
    /// Message encoding: protobuf, json or otlp_proto.
    #[arg(
        id = "kafka.consumer.encoding",
        long = "kafka.consumer.encoding",
        env = "KAFKA_CONSUMER_ENCODING",
        value_enum,
        default_value = "protobuf"
    )]
    pub encoding: Encoding,
    /// Undecodable messages are copied to this topic (empty: only counted).
    #[arg(
        id = "kafka.consumer.dead-letter-topic",
        long = "kafka.consumer.dead-letter-topic",
        env = "KAFKA_CONSUMER_DEAD_LETTER_TOPIC",
        default_value = ""
    )]
    pub dead_letter_topic: String,
    /// Messages being written per partition at once.
    #[arg(
        id = "ingester.parallelism",
        long = "ingester.parallelism",
        env = "INGESTER_PARALLELISM",
        default_value_t = 1000
    )]
    pub parallelism: usize,
    /// Messages written to storage per write.
    #[arg(
        id = "ingester.batch-size",
        long = "ingester.batch-size",
        env = "INGESTER_BATCH_SIZE",
        default_value_t = 100
    )]
    pub batch_size: usize,
    /// Longest a message waits for its batch to fill.
    #[arg(id = "ingester.batch-wait", long = "ingester.batch-wait", env = "INGESTER_BATCH_WAIT", default_value = "100ms", value_parser = spoor_model::parse_go_duration)]
    pub batch_wait: Duration,
    /// First delay before retrying a failed storage write; doubled up to 30s.
    #[arg(id = "ingester.retry-backoff", long = "ingester.retry-backoff", env = "INGESTER_RETRY_BACKOFF", default_value = "100ms", value_parser = spoor_model::parse_go_duration)]
    pub retry_backoff: Duration,
}

impl ConsumerOptions {
    pub fn client_config(&self) -> Result<ClientConfig, OptionsError> {
        let mut c = ClientConfig::new();
        c.set("group.id", &self.group_id);
        c.set("client.id", &self.client_id);
        // offsets are stored by the ingester only once spans are written,
        // and committed from the store in the background and at shutdown
        c.set("enable.auto.commit", "true");
        c.set("enable.auto.offset.store", "false");
        c.set("auto.offset.reset", "earliest");
        self.client.apply(&mut c)?;
        Ok(c)
    }

    /// A producer for the dead-letter topic, on the consumer's brokers and credentials.
    pub fn dead_letter_config(&self) -> Result<ClientConfig, OptionsError> {
        let mut c = ClientConfig::new();
        self.client.apply(&mut c)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        producer: ProducerOptions,
        #[command(flatten)]
        consumer: ConsumerOptions,
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_jaegers_with_safe_acks() {
        let c = cli(&[]);
        let p = c.producer.client_config().unwrap();
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(p.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.producer.topic, "jaeger-spans");
        let k = c.consumer.client_config().unwrap();
        assert_eq!(k.get("group.id"), Some("jaeger-ingester"));
        assert_eq!(k.get("enable.auto.offset.store"), Some("false"));
    }

    #[test]
    fn sasl_tls_and_passthrough_become_librdkafka_settings() {
        let c = cli(&[
            "--kafka.producer.brokers=a:1,b:2",
            "--kafka.producer.authentication=plaintext",
            "--kafka.producer.plaintext.username=u",
            "--kafka.producer.plaintext.password=p",
            "--kafka.producer.plaintext.mechanism=SCRAM-SHA-512",
            "--kafka.producer.tls.enabled",
            "--kafka.producer.tls.ca=/ca.pem",
            "--kafka.producer.compression=lz4",
            "--kafka.producer.config=linger.ms=50;queue.buffering.max.kbytes=1024",
        ]);
        let p = c.producer.client_config().unwrap();
        assert_eq!(p.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(p.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(p.get("sasl.username"), Some("u"));
        assert_eq!(p.get("ssl.ca.location"), Some("/ca.pem"));
        assert_eq!(p.get("compression.codec"), Some("lz4"));
        // passthrough wins
        assert_eq!(p.get("linger.ms"), Some("50"));
        assert_eq!(p.get("queue.buffering.max.kbytes"), Some("1024"));
    }

    #[test]
    fn inconsistent_settings_are_refused_with_a_reason() {
        let c = cli(&["--kafka.producer.required-acks=local"]);
        assert!(matches!(
            c.producer.client_config().unwrap_err(),
            OptionsError::IdempotentNeedsAllAcks
        ));
        let c = cli(&["--kafka.consumer.authentication=tls"]);
        assert!(
            c.consumer
                .client_config()
                .unwrap_err()
                .to_string()
                .contains("tls.cert")
        );
        let c = cli(&["--kafka.consumer.authentication=plaintext"]);
        assert!(
            c.consumer
                .client_config()
                .unwrap_err()
                .to_string()
                .contains("username")
        );
        assert!(Cli::try_parse_from(["t", "--kafka.producer.config=novalue"]).is_err());
    }
}
