//! Command-line and environment options with Jaeger's `--cassandra.*`
//! names and `CASSANDRA_*` variables.
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::schema::{Replication, SchemaError, SchemaParams};

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

/// The options of one Cassandra cluster, written once and declared twice:
/// `--cassandra.*` (`CASSANDRA_*`) for the span store and
/// `--cassandra-archive.*` (`CASSANDRA_ARCHIVE_*`) for the archive, as in
/// Jaeger.
macro_rules! cassandra_options {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident : $ty:ty => $flag:literal, $env:literal [$($arg:tt)*];
    )*) => {
        #[derive(Args, Clone, Debug)]
        pub struct CassandraOptions {
            $(
                $(#[doc = $doc])*
                #[arg(id = concat!("cassandra.", $flag), long = concat!("cassandra.", $flag), env = concat!("CASSANDRA_", $env), $($arg)*)]
                pub $field: $ty,
            )*
        }

        /// The archive's cluster (the UI's Archive button): the same options
        /// as `--cassandra.*`, for the keyspace archived traces are kept in.
        #[derive(Args, Clone, Debug)]
        pub struct CassandraArchiveOptions {
            /// Keep archived traces in Cassandra, in the keyspace of --cassandra-archive.keyspace.
            #[arg(id = "cassandra-archive.enabled", long = "cassandra-archive.enabled", env = "CASSANDRA_ARCHIVE_ENABLED", default_value_t = false)]
            pub enabled: bool,
            $(
                $(#[doc = $doc])*
                #[arg(id = concat!("cassandra-archive.", $flag), long = concat!("cassandra-archive.", $flag), env = concat!("CASSANDRA_ARCHIVE_", $env), $($arg)*)]
                pub $field: $ty,
            )*
        }

        impl From<&CassandraArchiveOptions> for CassandraOptions {
            fn from(archive: &CassandraArchiveOptions) -> CassandraOptions {
                CassandraOptions {
                    $($field: archive.$field.clone(),)*
                }
            }
        }
    };
}

cassandra_options! {
    /// Comma-separated contact points (host or host:port).
    servers: Vec<String> => "servers", "SERVERS" [default_value = "127.0.0.1", value_delimiter = ','];
    /// Port of contact points given without one.
    port: u16 => "port", "PORT" [default_value_t = 9042];
    keyspace: String => "keyspace", "KEYSPACE" [default_value = "jaeger_v1_test"];
    username: String => "username", "USERNAME" [default_value = ""];
    password: String => "password", "PASSWORD" [default_value = "", hide_env_values = true];
    /// Consistency of reads and writes.
    consistency: ConsistencyLevel => "consistency", "CONSISTENCY" [value_enum, default_value = "local-one"];
    /// Prefer nodes of this datacenter.
    local_dc: String => "local-dc", "LOCAL_DC" [default_value = ""];
    /// Timeout of each request (0s: the driver's).
    timeout: Duration => "timeout", "TIMEOUT" [default_value = "0s", value_parser = spoor_model::parse_go_duration];
    /// Connect with TLS.
    tls_enabled: bool => "tls.enabled", "TLS_ENABLED" [default_value_t = false];
    /// CA certificates (PEM) the servers' certificates are checked against.
    tls_ca: Option<std::path::PathBuf> => "tls.ca", "TLS_CA" [];
    /// Client certificate (PEM), for servers that ask for one.
    tls_cert: Option<std::path::PathBuf> => "tls.cert", "TLS_CERT" [];
    /// The client certificate's key (PEM).
    tls_key: Option<std::path::PathBuf> => "tls.key", "TLS_KEY" [];
    /// The name the servers' certificates must carry, when not the host dialled.
    tls_server_name: Option<String> => "tls.server-name", "TLS_SERVER_NAME" [];
    /// Accept any server certificate (testing only).
    tls_skip_host_verify: bool => "tls.skip-host-verify", "TLS_SKIP_HOST_VERIFY" [default_value_t = false];
    /// Index span tags in tag_index.
    index_tags: bool => "index.tags", "INDEX_TAGS" [default_value_t = true, action = clap::ArgAction::Set];
    /// Index process tags in tag_index.
    index_process_tags: bool => "index.process-tags", "INDEX_PROCESS_TAGS" [default_value_t = true, action = clap::ArgAction::Set];
    /// Index log fields in tag_index.
    index_logs: bool => "index.logs", "INDEX_LOGS" [default_value_t = true, action = clap::ArgAction::Set];
    /// Comma-separated tag keys never indexed.
    tag_blacklist: Vec<String> => "index.tag-blacklist", "INDEX_TAG_BLACKLIST" [value_delimiter = ','];
    /// Comma-separated tag keys indexed; when set, no others are.
    tag_whitelist: Vec<String> => "index.tag-whitelist", "INDEX_TAG_WHITELIST" [value_delimiter = ','];
    /// Spans that get duration_index rows.
    index_duration: DurationIndex => "index.duration", "INDEX_DURATION" [value_enum, default_value = "all"];
    /// Create the keyspace and tables at startup when missing (else run spoor-cassandra-schema).
    schema_create: bool => "schema.create", "SCHEMA_CREATE" [default_value_t = false];
    /// Replication of a created keyspace: a factor (SimpleStrategy) or dc1:3,dc2:3.
    schema_replication: String => "schema.replication", "SCHEMA_REPLICATION" [default_value = "1"];
    /// How long span rows live in a created keyspace.
    schema_trace_ttl: Duration => "schema.trace-ttl", "SCHEMA_TRACE_TTL" [default_value = "48h", value_parser = spoor_model::parse_go_duration];
    /// How long dependency rows live in a created keyspace (0s: forever).
    schema_dependencies_ttl: Duration => "schema.dependencies-ttl", "SCHEMA_DEPENDENCIES_TTL" [default_value = "0s", value_parser = spoor_model::parse_go_duration];
}

impl CassandraOptions {
    /// The connection's TLS settings, checked.
    pub fn tls(&self) -> Result<spoor_tls::ClientTls, spoor_tls::TlsError> {
        spoor_tls::ClientTls {
            enabled: self.tls_enabled,
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
            skip_host_verify: self.tls_skip_host_verify,
        }
        .checked("cassandra.", false)
    }

    pub fn schema(&self) -> Result<SchemaParams, SchemaError> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cassandra: CassandraOptions,
        #[command(flatten)]
        archive: CassandraArchiveOptions,
    }

    #[test]
    fn the_archive_has_every_option_under_jaegers_archive_names() {
        let cli = Cli::try_parse_from([
            "spoor",
            "--cassandra.keyspace=jaeger_v1_dc1",
            "--cassandra-archive.enabled",
            "--cassandra-archive.servers=c1,c2:9142",
            "--cassandra-archive.keyspace=jaeger_archive",
            "--cassandra-archive.index.tags=false",
        ])
        .unwrap();
        assert!(cli.archive.enabled);
        let archive = CassandraOptions::from(&cli.archive);
        assert_eq!(archive.keyspace, "jaeger_archive");
        assert_eq!(archive.contact_points(), ["c1:9042", "c2:9142"]);
        assert!(!archive.index_tags);
        assert_eq!(cli.cassandra.keyspace, "jaeger_v1_dc1");
        assert_eq!(cli.cassandra.servers, ["127.0.0.1"]);
        assert!(cli.cassandra.index_tags);
    }

    #[test]
    fn tls_takes_jaegers_flags_and_refuses_half_an_identity() {
        let parse = |args: &[&str]| {
            let mut all = vec!["spoor"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().cassandra.tls()
        };
        let tls = parse(&[
            "--cassandra.tls.enabled",
            "--cassandra.tls.ca=/ca.pem",
            "--cassandra.tls.cert=/c.pem",
            "--cassandra.tls.key=/k.pem",
            "--cassandra.tls.server-name=db.internal",
        ])
        .unwrap();
        assert!(tls.enabled);
        assert_eq!(tls.server_name.as_deref(), Some("db.internal"));
        assert!(parse(&["--cassandra.tls.enabled", "--cassandra.tls.cert=/c.pem"]).is_err());
        assert!(!parse(&["--cassandra.tls.ca=/ca.pem"]).unwrap().enabled);
        assert!(!parse(&[]).unwrap().enabled);
    }
}
