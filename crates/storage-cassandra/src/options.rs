//! Command-line and environment options with Jaeger's `--cassandra.*`
//! names and `CASSANDRA_*` variables.
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::schema::{Replication, SchemaParams};

/// Which spans get `duration_index` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurationIndex {
    All,
    /// Spans without a parent: searches by duration find traces by their root.
    Root,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyLevel {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

#[derive(Args, Clone, Debug)]
pub struct CassandraOptions {
    /// Comma-separated contact points (host or host:port).
    #[arg(
        id = "cassandra.servers",
        long = "cassandra.servers",
        env = "CASSANDRA_SERVERS",
        default_value = "127.0.0.1",
        value_delimiter = ','
    )]
    pub servers: Vec<String>,
    /// Port of contact points given without one.
    #[arg(
        id = "cassandra.port",
        long = "cassandra.port",
        env = "CASSANDRA_PORT",
        default_value_t = 9042
    )]
    pub port: u16,
    #[arg(
        id = "cassandra.keyspace",
        long = "cassandra.keyspace",
        env = "CASSANDRA_KEYSPACE",
        default_value = "jaeger_v1_test"
    )]
    pub keyspace: String,
    #[arg(
        id = "cassandra.username",
        long = "cassandra.username",
        env = "CASSANDRA_USERNAME",
        default_value = ""
    )]
    pub username: String,
    #[arg(
        id = "cassandra.password",
        long = "cassandra.password",
        env = "CASSANDRA_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub password: String,
    /// Consistency of reads and writes.
    #[arg(
        id = "cassandra.consistency",
        long = "cassandra.consistency",
        env = "CASSANDRA_CONSISTENCY",
        value_enum,
        default_value = "local-one"
    )]
    pub consistency: ConsistencyLevel,
    /// Prefer nodes of this datacenter.
    #[arg(
        id = "cassandra.local-dc",
        long = "cassandra.local-dc",
        env = "CASSANDRA_LOCAL_DC",
        default_value = ""
    )]
    pub local_dc: String,
    /// Timeout of each request (0s: the driver's).
    #[arg(id = "cassandra.timeout", long = "cassandra.timeout", env = "CASSANDRA_TIMEOUT", default_value = "0s", value_parser = spoor_model::parse_go_duration)]
    pub timeout: Duration,
    #[arg(
        id = "cassandra.tls.enabled",
        long = "cassandra.tls.enabled",
        env = "CASSANDRA_TLS_ENABLED",
        default_value_t = false
    )]
    pub tls_enabled: bool,
    /// CA certificate (PEM) the servers' certificates are checked against.
    #[arg(
        id = "cassandra.tls.ca",
        long = "cassandra.tls.ca",
        env = "CASSANDRA_TLS_CA"
    )]
    pub tls_ca: Option<std::path::PathBuf>,
    #[arg(
        id = "cassandra.tls.skip-host-verify",
        long = "cassandra.tls.skip-host-verify",
        env = "CASSANDRA_TLS_SKIP_HOST_VERIFY",
        default_value_t = false
    )]
    pub tls_skip_host_verify: bool,
    /// Index span tags in tag_index.
    #[arg(id = "cassandra.index.tags", long = "cassandra.index.tags", env = "CASSANDRA_INDEX_TAGS", default_value_t = true, action = clap::ArgAction::Set)]
    pub index_tags: bool,
    /// Index process tags in tag_index.
    #[arg(id = "cassandra.index.process-tags", long = "cassandra.index.process-tags", env = "CASSANDRA_INDEX_PROCESS_TAGS", default_value_t = true, action = clap::ArgAction::Set)]
    pub index_process_tags: bool,
    /// Index log fields in tag_index.
    #[arg(id = "cassandra.index.logs", long = "cassandra.index.logs", env = "CASSANDRA_INDEX_LOGS", default_value_t = true, action = clap::ArgAction::Set)]
    pub index_logs: bool,
    /// Comma-separated tag keys never indexed.
    #[arg(
        id = "cassandra.index.tag-blacklist",
        long = "cassandra.index.tag-blacklist",
        env = "CASSANDRA_INDEX_TAG_BLACKLIST",
        value_delimiter = ','
    )]
    pub tag_blacklist: Vec<String>,
    /// Comma-separated tag keys indexed; when set, no others are.
    #[arg(
        id = "cassandra.index.tag-whitelist",
        long = "cassandra.index.tag-whitelist",
        env = "CASSANDRA_INDEX_TAG_WHITELIST",
        value_delimiter = ','
    )]
    pub tag_whitelist: Vec<String>,
    /// Spans that get duration_index rows.
    #[arg(
        id = "cassandra.index.duration",
        long = "cassandra.index.duration",
        env = "CASSANDRA_INDEX_DURATION",
        value_enum,
        default_value = "all"
    )]
    pub index_duration: DurationIndex,
    /// Create the keyspace and tables at startup when missing (else run spoor-cassandra-schema).
    #[arg(
        id = "cassandra.schema.create",
        long = "cassandra.schema.create",
        env = "CASSANDRA_SCHEMA_CREATE",
        default_value_t = false
    )]
    pub schema_create: bool,
    /// Replication of a created keyspace: a factor (SimpleStrategy) or dc1:3,dc2:3.
    #[arg(
        id = "cassandra.schema.replication",
        long = "cassandra.schema.replication",
        env = "CASSANDRA_SCHEMA_REPLICATION",
        default_value = "1"
    )]
    pub schema_replication: String,
    /// How long span rows live in a created keyspace.
    #[arg(id = "cassandra.schema.trace-ttl", long = "cassandra.schema.trace-ttl", env = "CASSANDRA_SCHEMA_TRACE_TTL", default_value = "48h", value_parser = spoor_model::parse_go_duration)]
    pub schema_trace_ttl: Duration,
    /// How long dependency rows live in a created keyspace (0s: forever).
    #[arg(id = "cassandra.schema.dependencies-ttl", long = "cassandra.schema.dependencies-ttl", env = "CASSANDRA_SCHEMA_DEPENDENCIES_TTL", default_value = "0s", value_parser = spoor_model::parse_go_duration)]
    pub schema_dependencies_ttl: Duration,
}

impl CassandraOptions {
    pub fn schema(&self) -> Result<SchemaParams, String> {
        Ok(SchemaParams {
            keyspace: self.keyspace.clone(),
            replication: Replication::parse(&self.schema_replication)?,
            trace_ttl: self.schema_trace_ttl,
            dependencies_ttl: self.schema_dependencies_ttl,
        })
    }

    /// Contact points with the default port added where missing.
    pub fn contact_points(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| {
                if s.contains(':') {
                    s.clone()
                } else {
                    format!("{s}:{}", self.port)
                }
            })
            .collect()
    }

    /// Whether a tag key goes to tag_index.
    pub fn indexes_tag(&self, key: &str) -> bool {
        if !self.tag_whitelist.is_empty() {
            return self.tag_whitelist.iter().any(|k| k == key);
        }
        !self.tag_blacklist.iter().any(|k| k == key)
    }
}
