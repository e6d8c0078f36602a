//! The `Spoor` custom resource. Its spec follows the Jaeger operator's, so a
//! `jaegertracing.io/v1` `Jaeger` resource converts by changing its
//! apiVersion and kind.
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Options as the Jaeger operator takes them: nested maps whose paths are
/// flag names (`{es: {server-urls: …}}` is `--es.server-urls=…`).
pub type Options = BTreeMap<String, Json>;

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "spoor.dev",
    version = "v1",
    kind = "Spoor",
    plural = "spoors",
    shortname = "spoor",
    namespaced,
    status = "SpoorStatus",
    printcolumn = r#"{"name":"Strategy","type":"string","jsonPath":".spec.strategy"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SpoorSpec {
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Component::is_empty")]
    pub all_in_one: Component,
    #[serde(default, skip_serializing_if = "Component::is_empty")]
    pub collector: Component,
    #[serde(default, skip_serializing_if = "Component::is_empty")]
    pub query: Component,
    #[serde(default, skip_serializing_if = "Component::is_empty")]
    pub ingester: Component,
    #[serde(default, skip_serializing_if = "AgentSpec::is_empty")]
    pub agent: AgentSpec,
    #[serde(default)]
    pub storage: StorageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingSpec>,
    /// Annotations and labels of every object the instance owns, and pod
    /// settings of every workload (a component's own add to or replace them).
    #[serde(flatten)]
    pub common: CommonSpec,
}

/// The Jaeger operator's common spec: at the top of a resource it applies to
/// every workload; on a component, maps and lists add to the top-level ones
/// and the other fields replace them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Container resources, as in a pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub resources: Option<Json>,
    /// Pod volumes, as in a pod spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_list")]
    pub volumes: Vec<Json>,
    /// Container volume mounts, as in a container spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_list")]
    pub volume_mounts: Vec<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub affinity: Option<Json>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_list")]
    pub tolerations: Vec<Json>,
    /// The pod security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub security_context: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

impl CommonSpec {
    /// `own` over `self`, as the Jaeger operator merges a component's
    /// common spec into the resource's.
    pub fn merged(&self, own: &CommonSpec) -> CommonSpec {
        let mut annotations = self.annotations.clone();
        annotations.extend(own.annotations.clone());
        let mut labels = self.labels.clone();
        labels.extend(own.labels.clone());
        let both = |a: &[Json], b: &[Json]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        CommonSpec {
            annotations,
            labels,
            resources: own.resources.clone().or_else(|| self.resources.clone()),
            volumes: both(&self.volumes, &own.volumes),
            volume_mounts: both(&self.volume_mounts, &own.volume_mounts),
            affinity: own.affinity.clone().or_else(|| self.affinity.clone()),
            tolerations: both(&self.tolerations, &own.tolerations),
            security_context: own
                .security_context
                .clone()
                .or_else(|| self.security_context.clone()),
            service_account: own
                .service_account
                .clone()
                .or_else(|| self.service_account.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// One pod: agent, collector and query on an in-process store.
    #[default]
    #[serde(alias = "allinone", alias = "all-in-one")]
    AllInOne,
    /// Collector and query Deployments on a shared store, agents beside the apps.
    Production,
    /// Production with Kafka between collectors and the ingester.
    Streaming,
}

/// Settings of one component (Deployment).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Options::is_empty")]
    #[schemars(schema_with = "free_form")]
    pub options: Options,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Environment variables, as in a container spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_list")]
    pub env: Vec<Json>,
    #[serde(flatten)]
    pub common: CommonSpec,
    /// Collector only: scale between `minReplicas` and `maxReplicas` on CPU
    /// (the default in production and streaming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

impl Component {
    pub fn is_empty(&self) -> bool {
        self == &Component::default()
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AgentStrategy {
    /// Injected beside the application by the admission webhook.
    #[default]
    #[serde(alias = "sidecar")]
    Sidecar,
    /// One agent per node, on host ports 6831, 6832 and 5778.
    #[serde(alias = "daemonset")]
    DaemonSet,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    #[serde(default)]
    pub strategy: AgentStrategy,
    #[serde(flatten)]
    pub component: Component,
}

impl AgentSpec {
    pub fn is_empty(&self) -> bool {
        self == &AgentSpec::default()
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    #[default]
    Memory,
    #[serde(alias = "badger")]
    Embedded,
    Cassandra,
    #[serde(alias = "opensearch")]
    Elasticsearch,
    Kafka,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Memory => "memory",
            StorageType::Embedded => "embedded",
            StorageType::Cassandra => "cassandra",
            StorageType::Elasticsearch => "elasticsearch",
            StorageType::Kafka => "kafka",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(default, rename = "type")]
    pub kind: StorageType,
    /// Storage flags for every component that reads or writes spans.
    #[serde(default, skip_serializing_if = "Options::is_empty")]
    #[schemars(schema_with = "free_form")]
    pub options: Options,
    /// A Secret whose keys become environment variables (credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The dependencies CronJob (Elasticsearch and Cassandra; on by default).
    #[serde(default, skip_serializing_if = "JobSpec::is_empty")]
    pub dependencies: JobSpec,
    /// The CronJob deleting old indices (Elasticsearch; on by default).
    #[serde(default, skip_serializing_if = "EsIndexCleanerSpec::is_empty")]
    pub es_index_cleaner: EsIndexCleanerSpec,
    /// The rollover and lookback CronJobs, when `es.use-aliases` is set.
    #[serde(default, skip_serializing_if = "EsRolloverSpec::is_empty")]
    pub es_rollover: EsRolloverSpec,
    /// The Job creating the Cassandra keyspace (on by default).
    #[serde(default, skip_serializing_if = "CassandraCreateSchemaSpec::is_empty")]
    pub cassandra_create_schema: CassandraCreateSchemaSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CassandraCreateSchemaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `prod`: NetworkTopologyStrategy, 2 replicas in `datacenter`; `test`:
    /// SimpleStrategy, 1 replica. Unset: `cassandra.schema.replication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The datacenter of `prod` mode (Jaeger's default: `test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// How long span rows live (a Go duration).
    #[serde(default, rename = "traceTTL", skip_serializing_if = "Option::is_none")]
    pub trace_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

impl CassandraCreateSchemaSpec {
    pub fn is_empty(&self) -> bool {
        self == &CassandraCreateSchemaSpec::default()
    }

    /// The schema tool's flags for these settings.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let datacenter = self.datacenter.as_deref().unwrap_or("test");
        match self.mode.as_deref() {
            Some("test") => out.push("--cassandra.schema.replication=1".to_string()),
            Some(_) => out.push(format!("--cassandra.schema.replication={datacenter}:2")),
            None if self.datacenter.is_some() => {
                out.push(format!("--cassandra.schema.replication={datacenter}:2"))
            }
            None => {}
        }
        if let Some(ttl) = &self.trace_ttl {
            out.push(format!("--cassandra.schema.trace-ttl={ttl}"));
        }
        out
    }
}

/// A scheduled job of the instance, as the Jaeger operator's.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Container resources, as in a pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub resources: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
}

impl JobSpec {
    pub fn is_empty(&self) -> bool {
        self == &JobSpec::default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EsIndexCleanerSpec {
    /// Indices older than this many days are deleted (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_days: Option<u32>,
    #[serde(flatten)]
    pub job: JobSpec,
}

impl EsIndexCleanerSpec {
    pub fn is_empty(&self) -> bool {
        self == &EsIndexCleanerSpec::default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EsRolloverSpec {
    /// Elasticsearch rollover conditions as JSON (default `{"max_age": "1d"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    /// How long rolled-over indices stay searchable (a Go duration, default 24h).
    #[serde(default, rename = "readTTL", skip_serializing_if = "Option::is_none")]
    pub read_ttl: Option<String>,
    #[serde(flatten)]
    pub job: JobSpec,
}

impl EsRolloverSpec {
    pub fn is_empty(&self) -> bool {
        self == &EsRolloverSpec::default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Jaeger's default: on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SamplingSpec {
    /// A strategies file (`default_strategy`, `service_strategies`, …),
    /// served by the collectors.
    #[serde(default, skip_serializing_if = "Options::is_empty")]
    #[schemars(schema_with = "free_form")]
    pub options: Options,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpoorStatus {
    /// Pending, Running or Failed.
    #[serde(default)]
    pub phase: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The spec generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn free_form_object(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    free_form(g)
}

fn free_form_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}
