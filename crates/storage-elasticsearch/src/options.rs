//! Command-line and environment options, with Jaeger's `--es.*` names and
//! `ES_*` variables so existing deployments carry over.
use std::time::Duration;

use clap::Args;

use crate::bulk::BulkConfig;
use crate::client::ConnectOptions;
use crate::document::TagsAsFields;
use crate::indices::{Frequency, IndexLayout};
use crate::mapping::TemplateParams;

#[derive(Args, Clone, Debug)]
pub struct EsOptions {
    /// Comma-separated Elasticsearch / OpenSearch URLs.
    #[arg(
        id = "es.server-urls",
        long = "es.server-urls",
        env = "ES_SERVER_URLS",
        default_value = "http://127.0.0.1:9200",
        value_delimiter = ','
    )]
    pub server_urls: Vec<String>,
    /// Basic authentication user.
    #[arg(
        id = "es.username",
        long = "es.username",
        env = "ES_USERNAME",
        default_value = ""
    )]
    pub username: String,
    /// Basic authentication password.
    #[arg(
        id = "es.password",
        long = "es.password",
        env = "ES_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub password: String,
    /// File holding a bearer token sent with every request.
    #[arg(id = "es.token-file", long = "es.token-file", env = "ES_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Verify the servers' certificates against this CA (PEM).
    #[arg(id = "es.tls.ca", long = "es.tls.ca", env = "ES_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Accept any server certificate (testing only).
    #[arg(
        id = "es.tls.skip-host-verify",
        long = "es.tls.skip-host-verify",
        env = "ES_TLS_SKIP_HOST_VERIFY",
        default_value_t = false
    )]
    pub tls_skip_host_verify: bool,
    /// Timeout of each request.
    #[arg(id = "es.timeout", long = "es.timeout", env = "ES_TIMEOUT", default_value = "10s", value_parser = spoor_model::parse_go_duration)]
    pub timeout: Duration,
    /// Prefix of every index name (`prod` gives `prod-jaeger-span-…`).
    #[arg(
        id = "es.index-prefix",
        long = "es.index-prefix",
        env = "ES_INDEX_PREFIX",
        default_value = ""
    )]
    pub index_prefix: String,
    /// Separator inside index dates.
    #[arg(
        id = "es.index-date-separator",
        long = "es.index-date-separator",
        env = "ES_INDEX_DATE_SEPARATOR",
        default_value = "-"
    )]
    pub index_date_separator: String,
    /// A new span index every day or every hour.
    #[arg(
        id = "es.index-rollover-frequency-spans",
        long = "es.index-rollover-frequency-spans",
        env = "ES_INDEX_ROLLOVER_FREQUENCY_SPANS",
        value_enum,
        default_value = "day"
    )]
    pub span_frequency: Frequency,
    /// A new service index every day or every hour.
    #[arg(
        id = "es.index-rollover-frequency-services",
        long = "es.index-rollover-frequency-services",
        env = "ES_INDEX_ROLLOVER_FREQUENCY_SERVICES",
        value_enum,
        default_value = "day"
    )]
    pub service_frequency: Frequency,
    /// Read and write through the `-read`/`-write` aliases (rollover mode; `spoor-es-index init` makes them).
    #[arg(
        id = "es.use-aliases",
        long = "es.use-aliases",
        env = "ES_USE_ALIASES",
        default_value_t = false
    )]
    pub use_aliases: bool,
    /// Let ILM (Elasticsearch) or ISM (OpenSearch) roll indices over; implies aliases.
    #[arg(
        id = "es.use-ilm",
        long = "es.use-ilm",
        env = "ES_USE_ILM",
        default_value_t = false
    )]
    pub use_ilm: bool,
    /// Lifecycle policy named in the templates when --es.use-ilm is set.
    #[arg(
        id = "es.ilm-policy-name",
        long = "es.ilm-policy-name",
        env = "ES_ILM_POLICY_NAME",
        default_value = "jaeger-ilm-policy"
    )]
    pub ilm_policy_name: String,
    /// Put the index templates at startup.
    #[arg(id = "es.create-index-templates", long = "es.create-index-templates", env = "ES_CREATE_INDEX_TEMPLATES", default_value_t = true, action = clap::ArgAction::Set)]
    pub create_index_templates: bool,
    /// Shards of new indices.
    #[arg(
        id = "es.num-shards",
        long = "es.num-shards",
        env = "ES_NUM_SHARDS",
        default_value_t = 5
    )]
    pub num_shards: u32,
    /// Replicas of new indices.
    #[arg(
        id = "es.num-replicas",
        long = "es.num-replicas",
        env = "ES_NUM_REPLICAS",
        default_value_t = 1
    )]
    pub num_replicas: u32,
    /// How far back reads look for traces, services and operations.
    #[arg(id = "es.max-span-age", long = "es.max-span-age", env = "ES_MAX_SPAN_AGE", default_value = "72h", value_parser = spoor_model::parse_go_duration)]
    pub max_span_age: Duration,
    /// Most documents one search returns (spans of a trace are read in pages of this size).
    #[arg(
        id = "es.max-doc-count",
        long = "es.max-doc-count",
        env = "ES_MAX_DOC_COUNT",
        default_value_t = 10_000
    )]
    pub max_doc_count: usize,
    /// Most spans read for one trace.
    #[arg(
        id = "es.max-span-count",
        long = "es.max-span-count",
        env = "ES_MAX_SPAN_COUNT",
        default_value_t = 100_000
    )]
    pub max_span_count: usize,
    /// Write every tag also as a field `tag.<key>` (searchable without nesting).
    #[arg(
        id = "es.tags-as-fields.all",
        long = "es.tags-as-fields.all",
        env = "ES_TAGS_AS_FIELDS_ALL",
        default_value_t = false
    )]
    pub tags_as_fields_all: bool,
    /// Comma-separated tag keys written as fields.
    #[arg(
        id = "es.tags-as-fields.include",
        long = "es.tags-as-fields.include",
        env = "ES_TAGS_AS_FIELDS_INCLUDE",
        value_delimiter = ','
    )]
    pub tags_as_fields_include: Vec<String>,
    /// Replaces `.` in tag keys written as fields.
    #[arg(
        id = "es.tags-as-fields.dot-replacement",
        long = "es.tags-as-fields.dot-replacement",
        env = "ES_TAGS_AS_FIELDS_DOT_REPLACEMENT",
        default_value = "@"
    )]
    pub tags_dot_replacement: String,
    /// Documents per bulk request.
    #[arg(
        id = "es.bulk.actions",
        long = "es.bulk.actions",
        env = "ES_BULK_ACTIONS",
        default_value_t = 1000
    )]
    pub bulk_actions: usize,
    /// Bytes per bulk request.
    #[arg(
        id = "es.bulk.size",
        long = "es.bulk.size",
        env = "ES_BULK_SIZE",
        default_value_t = 5_000_000
    )]
    pub bulk_size: usize,
    /// Longest a document waits for its bulk request.
    #[arg(id = "es.bulk.flush-interval", long = "es.bulk.flush-interval", env = "ES_BULK_FLUSH_INTERVAL", default_value = "200ms", value_parser = spoor_model::parse_go_duration)]
    pub bulk_flush_interval: Duration,
    /// Bulk requests in flight at once.
    #[arg(
        id = "es.bulk.workers",
        long = "es.bulk.workers",
        env = "ES_BULK_WORKERS",
        default_value_t = 1
    )]
    pub bulk_workers: usize,
    /// Retries of documents the cluster refused for now (429, 5xx).
    #[arg(
        id = "es.bulk.max-retries",
        long = "es.bulk.max-retries",
        env = "ES_BULK_MAX_RETRIES",
        default_value_t = 5
    )]
    pub bulk_max_retries: u32,
    /// Wait until written spans are searchable before acknowledging (slower; for tests).
    #[arg(
        id = "es.bulk.refresh",
        long = "es.bulk.refresh",
        env = "ES_BULK_REFRESH",
        default_value_t = false
    )]
    pub bulk_refresh: bool,
}

impl EsOptions {
    pub fn connect_options(&self) -> Result<ConnectOptions, String> {
        let bearer_token = match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("token file {}: {e}", path.display()))?
                .trim()
                .to_string(),
            None => String::new(),
        };
        Ok(ConnectOptions {
            urls: self.server_urls.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            bearer_token,
            tls_ca: self.tls_ca.clone(),
            tls_skip_host_verify: self.tls_skip_host_verify,
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
