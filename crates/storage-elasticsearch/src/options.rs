//! Command-line and environment options, with Jaeger's `--es.*` names and
//! `ES_*` variables so existing deployments carry over.
use std::time::Duration;

use clap::Args;

use crate::bulk::BulkConfig;
use crate::client::{ConnectOptions, EsError};
use crate::document::TagsAsFields;
use crate::indices::{Frequency, IndexLayout};
use crate::mapping::TemplateParams;

/// What an Elasticsearch store is opened with, from either option group.
#[derive(Clone, Debug)]
pub struct EsConfig {
    pub connect: ConnectOptions,
    pub layout: IndexLayout,
    /// The index templates to put at startup, if any.
    pub templates: Option<TemplateParams>,
    pub tags: TagsAsFields,
    pub bulk: BulkConfig,
    pub max_span_age: Duration,
    pub max_doc_count: usize,
    pub max_span_count: usize,
}

/// One option group with Jaeger's names under a prefix: `--es.*` for the
/// span store, `--es-archive.*` for the archive, as in Jaeger.
macro_rules! es_options {
    ($name:ident, $p:literal, $e:literal, archive = $archive:literal, { $($extra:tt)* }) => {
        #[derive(Args, Clone, Debug)]
        pub struct $name {
            $($extra)*
            /// Comma-separated Elasticsearch / OpenSearch URLs.
            #[arg(id = concat!($p, "server-urls"), long = concat!($p, "server-urls"), env = concat!($e, "SERVER_URLS"), default_value = "http://127.0.0.1:9200", value_delimiter = ',')]
            pub server_urls: Vec<String>,
            /// Basic authentication user.
            #[arg(id = concat!($p, "username"), long = concat!($p, "username"), env = concat!($e, "USERNAME"), default_value = "")]
            pub username: String,
            /// Basic authentication password.
            #[arg(id = concat!($p, "password"), long = concat!($p, "password"), env = concat!($e, "PASSWORD"), default_value = "", hide_env_values = true)]
            pub password: String,
            /// File holding a bearer token sent with every request.
            #[arg(id = concat!($p, "token-file"), long = concat!($p, "token-file"), env = concat!($e, "TOKEN_FILE"))]
            pub token_file: Option<std::path::PathBuf>,
            /// Connect with TLS (an `https` URL does too).
            #[arg(id = concat!($p, "tls.enabled"), long = concat!($p, "tls.enabled"), env = concat!($e, "TLS_ENABLED"), default_value_t = false)]
            pub tls_enabled: bool,
            /// Verify the servers' certificates against this CA (PEM).
            #[arg(id = concat!($p, "tls.ca"), long = concat!($p, "tls.ca"), env = concat!($e, "TLS_CA"))]
            pub tls_ca: Option<std::path::PathBuf>,
            /// Client certificate (PEM), for clusters that ask for one.
            #[arg(id = concat!($p, "tls.cert"), long = concat!($p, "tls.cert"), env = concat!($e, "TLS_CERT"))]
            pub tls_cert: Option<std::path::PathBuf>,
            /// The client certificate's key (PEM).
            #[arg(id = concat!($p, "tls.key"), long = concat!($p, "tls.key"), env = concat!($e, "TLS_KEY"))]
            pub tls_key: Option<std::path::PathBuf>,
            /// Accept any server certificate (testing only).
            #[arg(id = concat!($p, "tls.skip-host-verify"), long = concat!($p, "tls.skip-host-verify"), env = concat!($e, "TLS_SKIP_HOST_VERIFY"), default_value_t = false)]
            pub tls_skip_host_verify: bool,
            /// Timeout of each request.
            #[arg(id = concat!($p, "timeout"), long = concat!($p, "timeout"), env = concat!($e, "TIMEOUT"), default_value = "10s", value_parser = spoor_model::parse_go_duration)]
            pub timeout: Duration,
            /// Prefix of every index name (`prod` gives `prod-jaeger-span-…`).
            #[arg(id = concat!($p, "index-prefix"), long = concat!($p, "index-prefix"), env = concat!($e, "INDEX_PREFIX"), default_value = "")]
            pub index_prefix: String,
            /// Separator inside index dates.
            #[arg(id = concat!($p, "index-date-separator"), long = concat!($p, "index-date-separator"), env = concat!($e, "INDEX_DATE_SEPARATOR"), default_value = "-")]
            pub index_date_separator: String,
            /// A new span index every day or every hour.
            #[arg(id = concat!($p, "index-rollover-frequency-spans"), long = concat!($p, "index-rollover-frequency-spans"), env = concat!($e, "INDEX_ROLLOVER_FREQUENCY_SPANS"), value_enum, default_value = "day")]
            pub span_frequency: Frequency,
            /// A new service index every day or every hour.
            #[arg(id = concat!($p, "index-rollover-frequency-services"), long = concat!($p, "index-rollover-frequency-services"), env = concat!($e, "INDEX_ROLLOVER_FREQUENCY_SERVICES"), value_enum, default_value = "day")]
            pub service_frequency: Frequency,
            /// Read and write through the `-read`/`-write` aliases (rollover mode; `spoor-es-index init` makes them).
            #[arg(id = concat!($p, "use-aliases"), long = concat!($p, "use-aliases"), env = concat!($e, "USE_ALIASES"), default_value_t = false)]
            pub use_aliases: bool,
            /// Let ILM (Elasticsearch) or ISM (OpenSearch) roll indices over; implies aliases.
            #[arg(id = concat!($p, "use-ilm"), long = concat!($p, "use-ilm"), env = concat!($e, "USE_ILM"), default_value_t = false)]
            pub use_ilm: bool,
            /// Lifecycle policy named in the templates when --es.use-ilm is set.
            #[arg(id = concat!($p, "ilm-policy-name"), long = concat!($p, "ilm-policy-name"), env = concat!($e, "ILM_POLICY_NAME"), default_value = "jaeger-ilm-policy")]
            pub ilm_policy_name: String,
            /// Put the index templates at startup.
            #[arg(id = concat!($p, "create-index-templates"), long = concat!($p, "create-index-templates"), env = concat!($e, "CREATE_INDEX_TEMPLATES"), default_value_t = true, action = clap::ArgAction::Set)]
            pub create_index_templates: bool,
            /// Shards of new indices.
            #[arg(id = concat!($p, "num-shards"), long = concat!($p, "num-shards"), env = concat!($e, "NUM_SHARDS"), default_value_t = 5)]
            pub num_shards: u32,
            /// Replicas of new indices.
            #[arg(id = concat!($p, "num-replicas"), long = concat!($p, "num-replicas"), env = concat!($e, "NUM_REPLICAS"), default_value_t = 1)]
            pub num_replicas: u32,
            /// How far back reads look for traces, services and operations.
            #[arg(id = concat!($p, "max-span-age"), long = concat!($p, "max-span-age"), env = concat!($e, "MAX_SPAN_AGE"), default_value = "72h", value_parser = spoor_model::parse_go_duration)]
            pub max_span_age: Duration,
            /// Most documents one search returns (spans of a trace are read in pages of this size).
            #[arg(id = concat!($p, "max-doc-count"), long = concat!($p, "max-doc-count"), env = concat!($e, "MAX_DOC_COUNT"), default_value_t = 10_000)]
            pub max_doc_count: usize,
            /// Most spans read for one trace.
            #[arg(id = concat!($p, "max-span-count"), long = concat!($p, "max-span-count"), env = concat!($e, "MAX_SPAN_COUNT"), default_value_t = 100_000)]
            pub max_span_count: usize,
            /// Write every tag also as a field `tag.<key>` (searchable without nesting).
            #[arg(id = concat!($p, "tags-as-fields.all"), long = concat!($p, "tags-as-fields.all"), env = concat!($e, "TAGS_AS_FIELDS_ALL"), default_value_t = false)]
            pub tags_as_fields_all: bool,
            /// Comma-separated tag keys written as fields.
            #[arg(id = concat!($p, "tags-as-fields.include"), long = concat!($p, "tags-as-fields.include"), env = concat!($e, "TAGS_AS_FIELDS_INCLUDE"), value_delimiter = ',')]
            pub tags_as_fields_include: Vec<String>,
            /// Replaces `.` in tag keys written as fields.
            #[arg(id = concat!($p, "tags-as-fields.dot-replacement"), long = concat!($p, "tags-as-fields.dot-replacement"), env = concat!($e, "TAGS_AS_FIELDS_DOT_REPLACEMENT"), default_value = "@")]
            pub tags_dot_replacement: String,
            /// Documents per bulk request.
            #[arg(id = concat!($p, "bulk.actions"), long = concat!($p, "bulk.actions"), env = concat!($e, "BULK_ACTIONS"), default_value_t = 1000)]
            pub bulk_actions: usize,
            /// Bytes per bulk request.
            #[arg(id = concat!($p, "bulk.size"), long = concat!($p, "bulk.size"), env = concat!($e, "BULK_SIZE"), default_value_t = 5_000_000)]
            pub bulk_size: usize,
            /// Longest a document waits for its bulk request.
            #[arg(id = concat!($p, "bulk.flush-interval"), long = concat!($p, "bulk.flush-interval"), env = concat!($e, "BULK_FLUSH_INTERVAL"), default_value = "200ms", value_parser = spoor_model::parse_go_duration)]
            pub bulk_flush_interval: Duration,
            /// Bulk requests in flight at once.
            #[arg(id = concat!($p, "bulk.workers"), long = concat!($p, "bulk.workers"), env = concat!($e, "BULK_WORKERS"), default_value_t = 1)]
            pub bulk_workers: usize,
            /// Retries of documents the cluster refused for now (429, 5xx).
            #[arg(id = concat!($p, "bulk.max-retries"), long = concat!($p, "bulk.max-retries"), env = concat!($e, "BULK_MAX_RETRIES"), default_value_t = 5)]
            pub bulk_max_retries: u32,
            /// Wait until written spans are searchable before acknowledging (slower; for tests).
            #[arg(id = concat!($p, "bulk.refresh"), long = concat!($p, "bulk.refresh"), env = concat!($e, "BULK_REFRESH"), default_value_t = false)]
            pub bulk_refresh: bool,
        }

        impl $name {
            /// What a store is opened with.
            pub fn config(&self) -> Result<EsConfig, EsError> {
                Ok(EsConfig {
                    connect: self.connect_options()?,
                    layout: self.layout(),
                    templates: self.create_index_templates.then(|| self.template_params()),
                    tags: self.tags_as_fields(),
                    bulk: self.bulk(),
                    max_span_age: self.max_span_age,
                    max_doc_count: self.max_doc_count.max(1),
                    max_span_count: self.max_span_count.max(1),
                })
            }

            pub fn connect_options(&self) -> Result<ConnectOptions, EsError> {
                let bearer_token = match &self.token_file {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| EsError::config(format!("token file {}", path.display()), e))?
                        .trim()
                        .to_string(),
                    None => String::new(),
                };
                Ok(ConnectOptions {
                    urls: self.server_urls.clone(),
                    username: self.username.clone(),
                    password: self.password.clone(),
                    bearer_token,
                    tls: spoor_tls::ClientTls {
                        enabled: self.tls_enabled,
                        ca: self.tls_ca.clone(),
                        cert: self.tls_cert.clone(),
                        key: self.tls_key.clone(),
                        server_name: None,
                        skip_host_verify: self.tls_skip_host_verify,
                    }
                    .checked($p, self.server_urls.iter().any(|u| u.starts_with("https:")))
                    .map_err(|e| EsError::config("TLS options", e))?,
                    timeout: self.timeout,
                })
            }

            pub fn layout(&self) -> IndexLayout {
                IndexLayout {
                    prefix: IndexLayout::normalize_prefix(&self.index_prefix),
                    use_aliases: self.use_aliases || self.use_ilm,
                    date_separator: self.index_date_separator.clone(),
                    span_frequency: self.span_frequency,
                    service_frequency: self.service_frequency,
                    archive: $archive,
                }
            }

            pub fn template_params(&self) -> TemplateParams {
                TemplateParams {
                    prefix: IndexLayout::normalize_prefix(&self.index_prefix),
                    shards: self.num_shards,
                    replicas: self.num_replicas,
                    lifecycle_policy: self.use_ilm.then(|| self.ilm_policy_name.clone()),
                }
            }

            pub fn tags_as_fields(&self) -> TagsAsFields {
                TagsAsFields {
                    all: self.tags_as_fields_all,
                    keys: self.tags_as_fields_include.iter().cloned().collect(),
                    dot_replacement: self.tags_dot_replacement.clone(),
                }
            }

            pub fn bulk(&self) -> BulkConfig {
                BulkConfig {
                    max_actions: self.bulk_actions.max(1),
                    max_bytes: self.bulk_size.max(1),
                    flush_interval: self.bulk_flush_interval,
                    workers: self.bulk_workers.max(1),
                    max_retries: self.bulk_max_retries,
                    refresh: self.bulk_refresh,
                    ..BulkConfig::default()
                }
            }
        }
    };
}

es_options!(EsOptions, "es.", "ES_", archive = false, {});

es_options!(EsArchiveOptions, "es-archive.", "ES_ARCHIVE_", archive = true, {
    /// Keep archived traces (the UI's Archive button) in Elasticsearch, in
    /// the `jaeger-span-archive` index (its `-read`/`-write` aliases with
    /// --es-archive.use-aliases).
    #[arg(id = "es-archive.enabled", long = "es-archive.enabled", env = "ES_ARCHIVE_ENABLED", default_value_t = false)]
    pub enabled: bool,
});
