//! From a `Spoor` resource to the objects of its instance, as the Jaeger
//! operator lays them out: Deployments, the agent DaemonSet, Services,
//! Ingress, ConfigMap, ServiceAccount, HPA, PodDisruptionBudgets, the
//! Cassandra schema Job and the dependencies CronJob. The objects are
//! k8s-openapi's types; the pod settings the resource passes through
//! (volumes, tolerations, …) are read into those types here, so a malformed
//! one is an error naming its field. Pure: the same resource always renders
//! the same objects (golden-tested).
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, DeploymentStrategy,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, Job, JobSpec as BatchJobSpec, JobTemplateSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SecretEnvSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::crd::{
    AgentStrategy, CommonSpec, Component, JobSpec, Options, Spoor, StorageType, Strategy,
};

/// The image tag the operator deploys by default: its own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const SAMPLING_DIR: &str = "/etc/spoor/sampling";

/// A pass-through field of the resource that is not what Kubernetes takes.
#[derive(Debug, thiserror::Error)]
#[error("spec field {field} is not a valid Kubernetes {kind}: {source}")]
pub struct RenderError {
    field: &'static str,
    kind: &'static str,
    #[source]
    source: serde_json::Error,
}

/// Flattens nested options into sorted `--a.b=value` arguments.
pub fn args(options: &Options) -> Vec<String> {
    fn walk(prefix: &str, value: &Json, out: &mut Vec<String>) {
        match value {
            Json::Object(map) => {
                for (k, v) in map {
                    walk(&join(prefix, k), v, out);
                }
            }
            Json::String(s) => out.push(format!("--{prefix}={s}")),
            Json::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect();
                out.push(format!("--{prefix}={}", items.join(",")));
            }
            other => out.push(format!("--{prefix}={other}")),
        }
    }
    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    }
    let mut out = Vec::new();
    for (k, v) in options {
        walk(k, v, &mut out);
    }
    out.sort();
    out
}

fn typed<T: DeserializeOwned>(
    field: &'static str,
    kind: &'static str,
    value: &Json,
) -> Result<T, RenderError> {
    serde_json::from_value(value.clone()).map_err(|source| RenderError {
        field,
        kind,
        source,
    })
}

fn typed_list<T: DeserializeOwned>(
    field: &'static str,
    kind: &'static str,
    values: &[Json],
) -> Result<Vec<T>, RenderError> {
    values.iter().map(|v| typed(field, kind, v)).collect()
}

fn typed_option<T: DeserializeOwned>(
    field: &'static str,
    kind: &'static str,
    value: Option<&Json>,
) -> Result<Option<T>, RenderError> {
    value.map(|v| typed(field, kind, v)).transpose()
}

/// A common spec (merged for one workload) read into Kubernetes' types.
struct PodSettings {
    annotations: BTreeMap<String, String>,
    resources: Option<ResourceRequirements>,
    volumes: Vec<Volume>,
    volume_mounts: Vec<VolumeMount>,
    affinity: Option<Affinity>,
    tolerations: Vec<Toleration>,
    security_context: Option<PodSecurityContext>,
    service_account: Option<String>,
}

impl PodSettings {
    fn new(common: &CommonSpec) -> Result<PodSettings, RenderError> {
        Ok(PodSettings {
            annotations: common.annotations.clone(),
            resources: typed_option(
                "resources",
                "ResourceRequirements",
                common.resources.as_ref(),
            )?,
            volumes: typed_list("volumes", "Volume", &common.volumes)?,
            volume_mounts: typed_list("volumeMounts", "VolumeMount", &common.volume_mounts)?,
            affinity: typed_option("affinity", "Affinity", common.affinity.as_ref())?,
            tolerations: typed_list("tolerations", "Toleration", &common.tolerations)?,
            security_context: typed_option(
                "securityContext",
                "PodSecurityContext",
                common.security_context.as_ref(),
            )?,
            service_account: common.service_account.clone(),
        })
    }
}

/// What every object of an instance shares.
struct Instance<'a> {
    name: String,
    namespace: Option<String>,
    spoor: &'a Spoor,
    owner: Option<OwnerReference>,
    /// The resource's own common spec, read.
    common: PodSettings,
}

fn some_list<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn some_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

impl<'a> Instance<'a> {
    fn new(spoor: &'a Spoor) -> Result<Instance<'a>, RenderError> {
        let owner = spoor.metadata.uid.as_ref().map(|uid| OwnerReference {
            api_version: "spoor.dev/v1".into(),
            kind: "Spoor".into(),
            name: spoor.metadata.name.clone().unwrap_or_default(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
        Ok(Instance {
            name: spoor
                .metadata
                .name
                .clone()
                .unwrap_or_else(|| "spoor".into()),
            namespace: spoor.metadata.namespace.clone(),
            spoor,
            owner,
            common: PodSettings::new(&spoor.spec.common)?,
        })
    }

    /// The common spec of a component, merged into the resource's and read.
    fn settings(&self, c: &Component) -> Result<PodSettings, RenderError> {
        PodSettings::new(&self.spoor.spec.common.merged(&c.common))
    }

    fn selector(&self, component: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("app.kubernetes.io/instance".into(), self.name.clone()),
                ("app.kubernetes.io/component".into(), component.into()),
            ])),
            ..LabelSelector::default()
        }
    }

    fn match_labels(&self, component: &str) -> Option<BTreeMap<String, String>> {
        self.selector(component).match_labels
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.spoor.spec.common.labels.clone();
        labels.insert("app".into(), "spoor".into());
        labels.insert(
            "app.kubernetes.io/name".into(),
            format!("{}-{component}", self.name),
        );
        labels.insert("app.kubernetes.io/instance".into(), self.name.clone());
        labels.insert("app.kubernetes.io/component".into(), component.into());
        labels.insert("app.kubernetes.io/part-of".into(), "spoor".into());
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "spoor-operator".into(),
        );
        labels
    }

    fn metadata(
        &self,
        name: &str,
        component: &str,
        extra: &BTreeMap<String, String>,
    ) -> ObjectMeta {
        let mut annotations = self.spoor.spec.common.annotations.clone();
        annotations.extend(extra.clone());
        ObjectMeta {
            name: Some(name.into()),
            namespace: self.namespace.clone(),
            labels: Some(self.labels(component)),
            annotations: some_map(annotations),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// A pod spec running `containers` with the settings' pod fields.
    fn pod(&self, settings: &PodSettings, containers: Vec<Container>) -> PodSpec {
        PodSpec {
            service_account_name: Some(
                settings
                    .service_account
                    .clone()
                    .unwrap_or_else(|| self.name.clone()),
            ),
            containers,
            volumes: some_list(settings.volumes.clone()),
            affinity: settings.affinity.clone(),
            tolerations: some_list(settings.tolerations.clone()),
            security_context: settings.security_context.clone(),
            ..PodSpec::default()
        }
    }

    fn sampling_configmap(&self) -> Option<String> {
        self.spoor
            .spec
            .sampling
            .as_ref()
            .filter(|s| !s.options.is_empty())
            .map(|_| format!("{}-sampling-configuration", self.name))
    }

    /// The strategies file the ConfigMap holds.
    fn sampling_file(&self) -> Option<String> {
        self.sampling_configmap()?;
        let options = &self.spoor.spec.sampling.as_ref()?.options;
        Some(serde_json::to_string_pretty(options).expect("json"))
    }

    /// A container of `binary` with its admin port probed.
    fn container(
        &self,
        role: &str,
        c: &Component,
        storage: Option<&str>,
        ports: &[(&str, i32, &str)],
        admin: i32,
    ) -> Result<Container, RenderError> {
        let settings = self.settings(c)?;
        let mut arguments = args(&c.options);
        let mut env = Vec::new();
        if let Some(kind) = storage {
            env.push(env_var("SPAN_STORAGE_TYPE", kind));
            if kind != "kafka" {
                arguments.extend(args(&self.spoor.spec.storage.options));
            }
        }
        let sampling =
            matches!(role, "collector" | "all-in-one") && self.sampling_configmap().is_some();
        if sampling {
            arguments.push(format!(
                "--sampling.strategies-file={SAMPLING_DIR}/sampling.json"
            ));
        }
        arguments.sort();
        arguments.dedup();
        env.extend(typed_list::<EnvVar>("env", "EnvVar", &c.env)?);
        let probe = |initial, period, failures| Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/".into()),
                port: IntOrString::Int(admin),
                ..HTTPGetAction::default()
            }),
            initial_delay_seconds: Some(initial),
            period_seconds: Some(period),
            failure_threshold: failures,
            ..Probe::default()
        };
        let mut mounts = settings.volume_mounts.clone();
        if sampling {
            mounts.push(VolumeMount {
                name: "sampling".into(),
                mount_path: SAMPLING_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        Ok(Container {
            name: format!("spoor-{role}"),
            image: Some(
                c.image
                    .clone()
                    .unwrap_or_else(|| format!("spoor/{role}:{VERSION}")),
            ),
            args: Some(arguments),
            env: Some(env),
            env_from: storage.and(self.secret_env()),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port, protocol)| ContainerPort {
                        name: Some((*name).into()),
                        container_port: *port,
                        protocol: Some((*protocol).into()),
                        ..ContainerPort::default()
                    })
                    .collect(),
            ),
            readiness_probe: Some(probe(1, 5, None)),
            liveness_probe: Some(probe(5, 15, Some(5))),
            resources: Some(settings.resources.unwrap_or_else(default_resources)),
            security_context: Some(restricted()),
            volume_mounts: some_list(mounts),
            ..Container::default()
        })
    }

    /// The storage secret as the container's environment, when there is one.
    fn secret_env(&self) -> Option<Vec<EnvFromSource>> {
        self.spoor.spec.storage.secret_name.as_ref().map(|secret| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.clone(),
                    ..SecretEnvSource::default()
                }),
                ..EnvFromSource::default()
            }]
        })
    }

    /// `replicas` is the default when the spec names none; `None` leaves the
    /// field out, for a Deployment whose size an autoscaler owns.
    fn deployment(
        &self,
        component: &str,
        c: &Component,
        container: Container,
        replicas: Option<i32>,
    ) -> Result<Deployment, RenderError> {
        let name = format!("{}-{component}", self.name);
        let mut settings = self.settings(c)?;
        let sampling = matches!(component, "collector" | "all-in-one");
        if sampling && let Some(cm) = self.sampling_configmap() {
            settings.volumes.push(Volume {
                name: "sampling".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: cm,
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        let pod_spec = self.pod(&settings, vec![container]);
        let mut labels = self.labels(component);
        labels.extend(c.common.labels.clone());
        let mut annotations = settings.annotations;
        annotations.insert("prometheus.io/scrape".into(), "true".into());
        if sampling && let Some(file) = self.sampling_file() {
            // the collector reads the file at start: a new checksum rolls the pods
            annotations.insert(
                "spoor.dev/sampling-checksum".into(),
                format!("{:016x}", spoor_model::hex::fnv1a(file.as_bytes())),
            );
        }
        let mut metadata = self.metadata(&name, component, &c.common.annotations);
        metadata.labels = Some(labels.clone());
        Ok(Deployment {
            metadata,
            spec: Some(DeploymentSpec {
                replicas: c.replicas.or(replicas),
                selector: self.selector(component),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    ..DeploymentStrategy::default()
                }),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod_spec),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })
    }

    fn service(
        &self,
        name: &str,
        component: &str,
        ports: &[(&str, i32, &str)],
        headless: bool,
    ) -> Service {
        Service {
            metadata: self.metadata(name, component, &BTreeMap::new()),
            spec: Some(ServiceSpec {
                selector: self.match_labels(component),
                cluster_ip: headless.then(|| "None".into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, protocol)| ServicePort {
                            name: Some((*name).into()),
                            port: *port,
                            target_port: Some(IntOrString::Int(*port)),
                            protocol: Some((*protocol).into()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn pdb(&self, component: &str) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.metadata(
                &format!("{}-{component}", self.name),
                component,
                &BTreeMap::new(),
            ),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.selector(component)),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    fn autoscaler(&self, c: &Component) -> HorizontalPodAutoscaler {
        let name = format!("{}-collector", self.name);
        HorizontalPodAutoscaler {
            metadata: self.metadata(&name, "collector", &BTreeMap::new()),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name,
                },
                min_replicas: Some(c.min_replicas.unwrap_or(1)),
                max_replicas: c.max_replicas.unwrap_or(100),
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(90),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                ..HorizontalPodAutoscalerSpec::default()
            }),
            ..HorizontalPodAutoscaler::default()
        }
    }

    fn daemonset(&self) -> Result<DaemonSet, RenderError> {
        let settings = self.settings(&self.spoor.spec.agent.component)?;
        let mut pod = self.pod(&settings, vec![agent_container(self.spoor, true)?]);
        pod.dns_policy = Some("ClusterFirstWithHostNet".into());
        Ok(DaemonSet {
            metadata: self.metadata(
                &format!("{}-agent-daemonset", self.name),
                "agent",
                &BTreeMap::new(),
            ),
            spec: Some(DaemonSetSpec {
                selector: self.selector("agent"),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels("agent")),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod),
                },
                ..DaemonSetSpec::default()
            }),
            ..DaemonSet::default()
        })
    }

    fn ingress(&self) -> Option<Ingress> {
        let spec = &self.spoor.spec;
        let ingress = spec.ingress.clone().unwrap_or_default();
        // Jaeger's default: the query service gets an Ingress
        if !ingress.enabled.unwrap_or(true) {
            return None;
        }
        let paths = HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some("/".into()),
                path_type: "Prefix".into(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: format!("{}-query", self.name),
                        port: Some(ServiceBackendPort {
                            number: Some(16686),
                            ..ServiceBackendPort::default()
                        }),
                    }),
                    ..IngressBackend::default()
                },
            }],
        };
        let rule = |host: Option<&String>| IngressRule {
            host: host.cloned(),
            http: Some(paths.clone()),
        };
        let rules = if ingress.hosts.is_empty() {
            vec![rule(None)]
        } else {
            ingress.hosts.iter().map(Some).map(rule).collect()
        };
        let tls = ingress
            .tls
            .iter()
            .map(|t| IngressTLS {
                hosts: Some(t.hosts.clone()),
                secret_name: t.secret_name.clone(),
            })
            .collect();
        let mut metadata = self.metadata(
            &format!("{}-query", self.name),
            "query-ingress",
            &BTreeMap::new(),
        );
        if !ingress.annotations.is_empty() {
            let mut all = spec.common.annotations.clone();
            all.extend(ingress.annotations.clone());
            metadata.annotations = Some(all);
        }
        Some(Ingress {
            metadata,
            spec: Some(IngressSpec {
                ingress_class_name: ingress.ingress_class_name.clone(),
                rules: Some(rules),
                tls: some_list(tls),
                ..IngressSpec::default()
            }),
            ..Ingress::default()
        })
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn restricted() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        ..SecurityContext::default()
    }
}

const COLLECTOR_PORTS: &[(&str, i32, &str)] = &[
    ("grpc-jaeger", 14250, "TCP"),
    ("http-jaeger", 14268, "TCP"),
    ("http-zipkin", 9411, "TCP"),
    ("grpc-otlp", 4317, "TCP"),
    ("http-otlp", 4318, "TCP"),
    ("admin", 14269, "TCP"),
];
const QUERY_PORTS: &[(&str, i32, &str)] = &[
    ("http-query", 16686, "TCP"),
    ("grpc-query", 16685, "TCP"),
    ("admin", 16687, "TCP"),
];
const AGENT_PORTS: &[(&str, i32, &str)] = &[
    ("zk-compact-trft", 5775, "UDP"),
    ("jg-compact-trft", 6831, "UDP"),
    ("jg-binary-trft", 6832, "UDP"),
    ("http-config", 5778, "TCP"),
    ("admin", 14271, "TCP"),
];

/// The agent container: as the DaemonSet's and as the injected sidecar.
pub fn agent_container(spoor: &Spoor, host_ports: bool) -> Result<Container, RenderError> {
    let instance = Instance::new(spoor)?;
    let mut agent = spoor.spec.agent.component.clone();
    let collector = format!("{}-collector", instance.name);
    let host = match &instance.namespace {
        Some(ns) => format!("{collector}.{ns}.svc:14250"),
        None => format!("{collector}:14250"),
    };
    agent
        .options
        .entry("reporter".into())
        .or_insert_with(|| serde_json::json!({"grpc": {"host-port": host}}));
    let mut container = instance.container("agent", &agent, None, AGENT_PORTS, 14271)?;
    if host_ports {
        for port in container.ports.iter_mut().flatten() {
            if port.name.as_deref() != Some("admin") {
                port.host_port = Some(port.container_port);
            }
        }
    } else {
        // a sidecar joins the application's pod, which has none of the
        // instance's volumes
        container.volume_mounts = None;
    }
    Ok(container)
}

/// An object as the API server takes it: k8s-openapi writes its apiVersion
/// and kind.
fn object(k: impl Serialize) -> Json {
    serde_json::to_value(k).expect("Kubernetes objects serialize")
}

/// Every object of the instance, in a stable order.
pub fn render(spoor: &Spoor) -> Result<Vec<Json>, RenderError> {
    let i = Instance::new(spoor)?;
    let spec = &spoor.spec;
    let storage = spec.storage.kind.as_str();
    let mut out = vec![object(ServiceAccount {
        metadata: i.metadata(&i.name, "service-account", &BTreeMap::new()),
        ..ServiceAccount::default()
    })];
    if let (Some(cm), Some(file)) = (i.sampling_configmap(), i.sampling_file()) {
        out.push(object(ConfigMap {
            metadata: i.metadata(&cm, "sampling-configuration", &BTreeMap::new()),
            data: Some(BTreeMap::from([("sampling.json".into(), file)])),
            ..ConfigMap::default()
        }));
    }
    match spec.strategy {
        Strategy::AllInOne => {
            let mut ports: Vec<(&str, i32, &str)> = COLLECTOR_PORTS.to_vec();
            ports.retain(|p| p.0 != "admin");
            ports.extend(QUERY_PORTS.iter().filter(|p| p.0 != "admin"));
            ports.extend(AGENT_PORTS.iter().filter(|p| p.0 != "admin"));
            ports.push(("admin", 14269, "TCP"));
            let c = &spec.all_in_one;
            let container = i.container("all-in-one", c, Some(storage), &ports, 14269)?;
            let mut deployment = i.deployment("all-in-one", c, container, Some(1))?;
            // one process owns the store: never two at once
            if let Some(spec) = deployment.spec.as_mut() {
                spec.strategy = Some(DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    ..DeploymentStrategy::default()
                });
            }
            deployment.metadata.name = Some(i.name.clone());
            out.push(object(deployment));
            for (service, ports, headless) in [
                ("collector", &COLLECTOR_PORTS[..5], false),
                ("query", &QUERY_PORTS[..2], false),
                ("agent", &AGENT_PORTS[..4], true),
            ] {
                let name = format!("{}-{service}", i.name);
                out.push(object(i.service(&name, "all-in-one", ports, headless)));
            }
        }
        Strategy::Production | Strategy::Streaming => {
            let streaming = spec.strategy == Strategy::Streaming;
            let collector_storage = if streaming { "kafka" } else { storage };
            let c = &spec.collector;
            let container = i.container(
                "collector",
                c,
                Some(collector_storage),
                COLLECTOR_PORTS,
                14269,
            )?;
            let autoscaled = c.autoscale.unwrap_or(true);
            out.push(object(i.deployment(
                "collector",
                c,
                container,
                (!autoscaled).then_some(1),
            )?));
            let collector = format!("{}-collector", i.name);
            out.push(object(i.service(
                &collector,
                "collector",
                &COLLECTOR_PORTS[..5],
                false,
            )));
            out.push(object(i.pdb("collector")));
            if autoscaled {
                out.push(object(i.autoscaler(c)));
            }
            let q = &spec.query;
            let container = i.container("query", q, Some(storage), QUERY_PORTS, 16687)?;
            out.push(object(i.deployment("query", q, container, Some(1))?));
            let query = format!("{}-query", i.name);
            out.push(object(i.service(&query, "query", &QUERY_PORTS[..2], false)));
            out.push(object(i.pdb("query")));
            if streaming {
                let g = &spec.ingester;
                let admin = [("admin", 14270, "TCP")];
                let container = i.container("ingester", g, Some(storage), &admin, 14270)?;
                out.push(object(i.deployment("ingester", g, container, Some(1))?));
            }
            if spec.agent.strategy == AgentStrategy::DaemonSet {
                out.push(object(i.daemonset()?));
            }
            if matches!(
                spec.storage.kind,
                StorageType::Cassandra | StorageType::Elasticsearch
            ) && spec.storage.dependencies.enabled.unwrap_or(true)
            {
                out.push(object(dependencies_cronjob(&i, storage)?));
            }
            if spec.storage.kind == StorageType::Cassandra
                && spec.storage.cassandra_create_schema.enabled.unwrap_or(true)
            {
                out.push(object(cassandra_schema_job(&i)));
            }
            if spec.storage.kind == StorageType::Elasticsearch {
                out.extend(elasticsearch_jobs(&i)?);
            }
        }
    }
    out.extend(i.ingress().map(object));
    Ok(out)
}

fn tools_container(i: &Instance, command: &str, extra: Vec<String>, storage: &str) -> Container {
    let mut arguments = args(&i.spoor.spec.storage.options);
    arguments.extend(extra);
    Container {
        name: command.into(),
        image: Some(format!("spoor/tools:{VERSION}")),
        command: Some(vec![command.into()]),
        args: Some(arguments),
        env: Some(vec![env_var("SPAN_STORAGE_TYPE", storage)]),
        env_from: i.secret_env(),
        resources: Some(i.common.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted()),
        volume_mounts: some_list(i.common.volume_mounts.clone()),
        ..Container::default()
    }
}

/// A Job's pod template: the resource's pod settings, restarted on failure.
fn job_template(i: &Instance, component: &str, container: Container) -> PodTemplateSpec {
    let mut pod = i.pod(&i.common, vec![container]);
    pod.restart_policy = Some("OnFailure".into());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(i.labels(component)),
            ..ObjectMeta::default()
        }),
        spec: Some(pod),
    }
}

fn default_resources() -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.into());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), quantity("100m")),
            ("memory".into(), quantity("128Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), quantity("1Gi"))])),
        ..ResourceRequirements::default()
    }
}

/// A CronJob `<instance>-<component>` running `container` on the job's
/// schedule (or `schedule`), with the job's image, resources and limits.
fn cronjob(
    i: &Instance,
    component: &str,
    job: &JobSpec,
    schedule: &str,
    mut container: Container,
) -> Result<CronJob, RenderError> {
    if let Some(image) = &job.image {
        container.image = Some(image.clone());
    }
    if let Some(resources) =
        typed_option("resources", "ResourceRequirements", job.resources.as_ref())?
    {
        container.resources = Some(resources);
    }
    Ok(CronJob {
        metadata: i.metadata(
            &format!("{}-{component}", i.name),
            component,
            &BTreeMap::new(),
        ),
        spec: Some(CronJobSpec {
            schedule: job.schedule.as_deref().unwrap_or(schedule).into(),
            concurrency_policy: Some("Forbid".into()),
            successful_jobs_history_limit: job.successful_jobs_history_limit,
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(BatchJobSpec {
                    backoff_limit: Some(job.backoff_limit.unwrap_or(3)),
                    ttl_seconds_after_finished: job.ttl_seconds_after_finished,
                    template: job_template(i, component, container),
                    ..BatchJobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        ..CronJob::default()
    })
}

/// A one-off Job `name` of `component`, retried ten times.
fn job(i: &Instance, name: String, component: &str, container: Container, ttl: Option<i32>) -> Job {
    Job {
        metadata: i.metadata(&name, component, &BTreeMap::new()),
        spec: Some(BatchJobSpec {
            backoff_limit: Some(10),
            ttl_seconds_after_finished: ttl,
            template: job_template(i, component, container),
            ..BatchJobSpec::default()
        }),
        ..Job::default()
    }
}

fn dependencies_cronjob(i: &Instance, storage: &str) -> Result<CronJob, RenderError> {
    let container = tools_container(
        i,
        "spoor-dependencies",
        vec!["--dependencies.window=24h".into()],
        storage,
    );
    cronjob(
        i,
        "dependencies",
        &i.spoor.spec.storage.dependencies,
        "55 23 * * *",
        container,
    )
}

/// Index lifecycle as the Jaeger operator runs it: the cleaner CronJob
/// (unless disabled) and, with `es.use-aliases`, a Job creating the first
/// rollover indices and aliases plus the rollover and lookback CronJobs.
fn elasticsearch_jobs(i: &Instance) -> Result<Vec<Json>, RenderError> {
    let storage = &i.spoor.spec.storage;
    let es_index =
        |extra: &[String]| tools_container(i, "spoor-es-index", extra.to_vec(), "elasticsearch");
    let mut out = Vec::new();
    let cleaner = &storage.es_index_cleaner;
    if cleaner.job.enabled.unwrap_or(true) {
        let days = cleaner.number_of_days.unwrap_or(7);
        let container = es_index(&["clean".into(), format!("--days={days}")]);
        let cron = cronjob(
            i,
            "es-index-cleaner",
            &cleaner.job,
            "55 23 * * *",
            container,
        )?;
        out.push(object(cron));
    }
    if args(&storage.options)
        .iter()
        .any(|a| a == "--es.use-aliases=true")
    {
        let rollover = &storage.es_rollover;
        let component = "es-rollover-create-mapping";
        let name = format!("{}-{component}", i.name);
        out.push(object(job(
            i,
            name,
            component,
            es_index(&["init".into()]),
            None,
        )));
        let conditions = rollover
            .conditions
            .as_deref()
            .unwrap_or(r#"{"max_age": "1d"}"#);
        let container = es_index(&["rollover".into(), format!("--conditions={conditions}")]);
        out.push(object(cronjob(
            i,
            "es-rollover",
            &rollover.job,
            "0 0 * * *",
            container,
        )?));
        let read_ttl = rollover.read_ttl.as_deref().unwrap_or("24h");
        let container = es_index(&["lookback".into(), format!("--read-ttl={read_ttl}")]);
        out.push(object(cronjob(
            i,
            "es-lookback",
            &rollover.job,
            "0 0 * * *",
            container,
        )?));
    }
    Ok(out)
}

fn cassandra_schema_job(i: &Instance) -> Job {
    let settings = &i.spoor.spec.storage.cassandra_create_schema;
    let mut container = tools_container(i, "spoor-cassandra-schema", settings.args(), "cassandra");
    if let Some(image) = &settings.image {
        container.image = Some(image.clone());
    }
    let component = "cassandra-schema-job";
    let name = format!("{}-{component}", i.name);
    job(
        i,
        name,
        component,
        container,
        settings.ttl_seconds_after_finished,
    )
}

/// The objects as one YAML stream.
pub fn to_yaml(objects: &[Json]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("yaml"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spoor(yaml: &str) -> Spoor {
        crate::parse(yaml).unwrap()
    }

    fn render_ok(spoor: &Spoor) -> Vec<Json> {
        render(spoor).unwrap()
    }

    fn sidecar(spoor: &Spoor) -> Json {
        serde_json::to_value(agent_container(spoor, false).unwrap()).unwrap()
    }

    fn kinds(objects: &[Json]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    fn find<'a>(objects: &'a [Json], kind: &str, name: &str) -> &'a Json {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds(objects)))
    }

    #[test]
    fn nested_options_become_sorted_flags() {
        let options: Options = serde_json::from_value(json!({
            "es": {"server-urls": "http://es:9200", "num-shards": 3, "tls": {"enabled": true}},
            "log-level": "debug",
            "collector": {"tags": ["a=1", "b=2"]},
        }))
        .unwrap();
        assert_eq!(
            args(&options),
            [
                "--collector.tags=a=1,b=2",
                "--es.num-shards=3",
                "--es.server-urls=http://es:9200",
                "--es.tls.enabled=true",
                "--log-level=debug",
            ]
        );
    }

    #[test]
    fn the_simplest_resource_is_an_all_in_one_with_services_and_ingress() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: simplest}\n",
        ));
        assert_eq!(
            kinds(&objects),
            [
                "ServiceAccount/simplest",
                "Deployment/simplest",
                "Service/simplest-collector",
                "Service/simplest-query",
                "Service/simplest-agent",
                "Ingress/simplest-query",
            ]
        );
        let d = find(&objects, "Deployment", "simplest");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["env"][0],
            json!({"name": "SPAN_STORAGE_TYPE", "value": "memory"})
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], 14269);
        assert_eq!(
            find(&objects, "Service", "simplest-agent")["spec"]["clusterIP"],
            "None"
        );
    }

    #[test]
    fn production_splits_components_and_passes_storage_options() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: p, namespace: obs, uid: u-1}\n\
             spec:\n  strategy: production\n  ingress: {enabled: false}\n  collector: {autoscale: false, replicas: 3}\n\
             \x20 storage: {type: cassandra, secretName: creds, options: {cassandra: {servers: c1}}}\n",
        ));
        let names = kinds(&objects);
        assert!(names.contains(&"Deployment/p-collector".to_string()));
        assert!(names.contains(&"Deployment/p-query".to_string()));
        assert!(names.contains(&"Job/p-cassandra-schema-job".to_string()));
        assert!(names.contains(&"CronJob/p-dependencies".to_string()));
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("Ingress") || n.starts_with("HorizontalPodAutoscaler"))
        );
        assert!(
            !names.iter().any(|n| n.starts_with("DaemonSet")),
            "sidecar agents by default"
        );
        let collector = find(&objects, "Deployment", "p-collector");
        assert_eq!(collector["spec"]["replicas"], 3);
        assert_eq!(collector["metadata"]["namespace"], "obs");
        assert_eq!(collector["metadata"]["ownerReferences"][0]["uid"], "u-1");
        let c = &collector["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"], json!(["--cassandra.servers=c1"]));
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "creds");
    }

    #[test]
    fn streaming_collectors_write_to_kafka_and_the_ingester_to_storage() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: s}\nspec:\n  strategy: streaming\n\
             \x20 collector: {options: {kafka: {producer: {brokers: k:9092}}}}\n\
             \x20 storage: {type: elasticsearch, options: {es: {server-urls: 'http://es:9200'}}}\n",
        ));
        let env = |name: &str| {
            find(&objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0].clone()
        };
        assert_eq!(env("s-collector")["env"][0]["value"], "kafka");
        assert_eq!(
            env("s-collector")["args"],
            json!(["--kafka.producer.brokers=k:9092"])
        );
        assert_eq!(env("s-ingester")["env"][0]["value"], "elasticsearch");
        assert_eq!(
            env("s-ingester")["args"],
            json!(["--es.server-urls=http://es:9200"])
        );
    }

    #[test]
    fn sampling_options_become_a_mounted_strategies_file() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: x}\nspec:\n  sampling:\n    options:\n      default_strategy: {type: probabilistic, param: 0.5}\n",
        ));
        let cm = find(&objects, "ConfigMap", "x-sampling-configuration");
        let file: Json =
            serde_json::from_str(cm["data"]["sampling.json"].as_str().unwrap()).unwrap();
        assert_eq!(file["default_strategy"]["param"], 0.5);
        let pod = &find(&objects, "Deployment", "x")["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][0]["configMap"]["name"],
            "x-sampling-configuration"
        );
        assert!(
            pod["containers"][0]["args"]
                .as_array()
                .unwrap()
                .contains(&json!(
                    "--sampling.strategies-file=/etc/spoor/sampling/sampling.json"
                ))
        );
    }

    #[test]
    fn a_sampling_change_rolls_the_collector_pods() {
        let checksum = |param: &str| {
            let objects = render_ok(&spoor(&format!(
                "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {{name: x}}\nspec:\n  strategy: production\n  sampling:\n    options:\n      default_strategy: {{type: probabilistic, param: {param}}}\n",
            )));
            let annotations = |name: &str| {
                find(&objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
                    .clone()
            };
            assert_eq!(
                annotations("x-query").get("spoor.dev/sampling-checksum"),
                None
            );
            annotations("x-collector")["spoor.dev/sampling-checksum"].clone()
        };
        assert!(checksum("0.5").is_string());
        assert_eq!(checksum("0.5"), checksum("0.5"));
        assert_ne!(checksum("0.5"), checksum("0.25"));
    }

    fn job_args(objects: &[Json], kind: &str, name: &str) -> Json {
        let o = find(objects, kind, name);
        let pod = if kind == "CronJob" {
            &o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &o["spec"]["template"]["spec"]
        };
        pod["containers"][0]["args"].clone()
    }

    #[test]
    fn elasticsearch_gets_jaegers_index_cleaner_and_dependencies_jobs() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: e}\nspec:\n  strategy: production\n\
             \x20 storage: {type: elasticsearch, options: {es: {server-urls: 'http://es:9200'}}}\n",
        ));
        let cleaner = find(&objects, "CronJob", "e-es-index-cleaner");
        assert_eq!(cleaner["spec"]["schedule"], "55 23 * * *");
        assert_eq!(
            job_args(&objects, "CronJob", "e-es-index-cleaner"),
            json!(["--es.server-urls=http://es:9200", "clean", "--days=7"])
        );
        assert_eq!(
            find(&objects, "CronJob", "e-dependencies")["spec"]["schedule"],
            "55 23 * * *"
        );
        let names = kinds(&objects);
        assert!(
            !names
                .iter()
                .any(|n| n.contains("rollover") || n.contains("lookback"))
        );
    }

    #[test]
    fn rollover_aliases_bring_the_rollover_jobs_and_job_settings_apply() {
        // a Jaeger operator resource, apiVersion and kind changed
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: r}\nspec:\n  strategy: production\n  storage:\n\
             \x20   type: elasticsearch\n    options: {es.server-urls: 'http://es:9200', es.use-aliases: true}\n\
             \x20   dependencies: {enabled: false}\n\
             \x20   esIndexCleaner: {numberOfDays: 3, schedule: '0 1 * * *', successfulJobsHistoryLimit: 1, ttlSecondsAfterFinished: 600}\n\
             \x20   esRollover: {conditions: '{\"max_age\": \"2d\"}', readTTL: 48h, schedule: '*/30 * * * *', image: 'registry.local/spoor/tools:1'}\n",
        ));
        let names = kinds(&objects);
        assert!(
            !names.contains(&"CronJob/r-dependencies".to_string()),
            "{names:?}"
        );
        let global = ["--es.server-urls=http://es:9200", "--es.use-aliases=true"];
        let with = |extra: &[&str]| json!(global.iter().chain(extra).collect::<Vec<_>>());
        assert_eq!(
            job_args(&objects, "Job", "r-es-rollover-create-mapping"),
            with(&["init"])
        );
        assert_eq!(
            job_args(&objects, "CronJob", "r-es-rollover"),
            with(&["rollover", r#"--conditions={"max_age": "2d"}"#])
        );
        assert_eq!(
            job_args(&objects, "CronJob", "r-es-lookback"),
            with(&["lookback", "--read-ttl=48h"])
        );
        assert_eq!(
            job_args(&objects, "CronJob", "r-es-index-cleaner"),
            with(&["clean", "--days=3"])
        );
        let cleaner = find(&objects, "CronJob", "r-es-index-cleaner");
        assert_eq!(cleaner["spec"]["schedule"], "0 1 * * *");
        assert_eq!(cleaner["spec"]["successfulJobsHistoryLimit"], 1);
        assert_eq!(
            cleaner["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"],
            600
        );
        let rollover = find(&objects, "CronJob", "r-es-rollover");
        assert_eq!(rollover["spec"]["schedule"], "*/30 * * * *");
        assert_eq!(
            rollover["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/spoor/tools:1"
        );
    }

    #[test]
    fn the_common_spec_reaches_every_pod_and_components_refine_it() {
        // Jaeger's common spec at the top and on the collector
        let s = spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: c}\nspec:\n  strategy: production\n\
             \x20 agent: {strategy: DaemonSet}\n\
             \x20 storage: {type: elasticsearch}\n\
             \x20 sampling: {options: {default_strategy: {type: probabilistic, param: 0.5}}}\n\
             \x20 tolerations: [{key: dedicated, value: tracing, effect: NoSchedule}]\n\
             \x20 affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [obs]}]}]}}}\n\
             \x20 securityContext: {fsGroup: 10001}\n\
             \x20 volumes: [{name: es-ca, secret: {secretName: es-ca}}]\n\
             \x20 volumeMounts: [{name: es-ca, mountPath: /etc/es-ca}]\n\
             \x20 labels: {team: observability}\n\
             \x20 collector:\n\
             \x20   serviceAccount: collector-sa\n\
             \x20   tolerations: [{key: spot, operator: Exists}]\n\
             \x20   labels: {tier: ingest}\n\
             \x20   resources: {limits: {memory: 2Gi}}\n",
        );
        let objects = render(&s).unwrap();
        let pod = |kind: &str, name: &str| {
            let o = find(&objects, kind, name);
            if kind == "CronJob" {
                o["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone()
            } else {
                o["spec"]["template"]["spec"].clone()
            }
        };
        let collector = pod("Deployment", "c-collector");
        assert_eq!(collector["serviceAccountName"], "collector-sa");
        assert_eq!(
            collector["tolerations"].as_array().unwrap().len(),
            2,
            "top-level and its own"
        );
        assert_eq!(collector["securityContext"]["fsGroup"], 10001);
        assert_eq!(collector["volumes"][0]["name"], "es-ca");
        assert_eq!(
            collector["volumes"][1]["name"], "sampling",
            "its own volume stays"
        );
        let container = &collector["containers"][0];
        assert_eq!(container["resources"], json!({"limits": {"memory": "2Gi"}}));
        assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/es-ca");
        let template = &find(&objects, "Deployment", "c-collector")["spec"]["template"]["metadata"];
        assert_eq!(template["labels"]["tier"], "ingest");
        assert_eq!(template["labels"]["team"], "observability");
        for (kind, name) in [
            ("Deployment", "c-query"),
            ("DaemonSet", "c-agent-daemonset"),
            ("CronJob", "c-es-index-cleaner"),
            ("CronJob", "c-dependencies"),
        ] {
            let p = pod(kind, name);
            assert_eq!(p["serviceAccountName"], "c", "{name}");
            assert_eq!(p["tolerations"].as_array().unwrap().len(), 1, "{name}");
            assert!(p["affinity"]["nodeAffinity"].is_object(), "{name}");
            assert_eq!(p["volumes"][0]["name"], "es-ca", "{name}");
            assert_eq!(
                p["containers"][0]["volumeMounts"][0]["name"], "es-ca",
                "{name}"
            );
        }
        assert_eq!(
            pod("DaemonSet", "c-agent-daemonset")["dnsPolicy"],
            "ClusterFirstWithHostNet"
        );
        assert_eq!(
            pod("CronJob", "c-dependencies")["restartPolicy"],
            "OnFailure"
        );
        // the injected sidecar cannot mount volumes the application's pod lacks
        assert_eq!(sidecar(&s).get("volumeMounts"), None);
    }

    #[test]
    fn the_cassandra_schema_job_follows_jaegers_create_schema_settings() {
        let render_with = |settings: &str| {
            render_ok(&spoor(&format!(
                "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {{name: k}}\nspec:\n  strategy: production\n\
                 \x20 storage: {{type: cassandra, options: {{cassandra: {{servers: c1}}}}{settings}}}\n",
            )))
        };
        let schema_args = |objects: &[Json]| job_args(objects, "Job", "k-cassandra-schema-job");
        assert_eq!(
            schema_args(&render_with("")),
            json!(["--cassandra.servers=c1"])
        );
        assert_eq!(
            schema_args(&render_with(
                ", cassandraCreateSchema: {mode: prod, datacenter: dc1, traceTTL: 72h}"
            )),
            json!([
                "--cassandra.servers=c1",
                "--cassandra.schema.replication=dc1:2",
                "--cassandra.schema.trace-ttl=72h"
            ])
        );
        assert_eq!(
            schema_args(&render_with(", cassandraCreateSchema: {mode: test}")),
            json!(["--cassandra.servers=c1", "--cassandra.schema.replication=1"])
        );
        let off = render_with(", cassandraCreateSchema: {enabled: false}");
        assert!(
            !kinds(&off).iter().any(|n| n.starts_with("Job/")),
            "{:?}",
            kinds(&off)
        );
    }

    #[test]
    fn an_autoscaled_collector_leaves_its_replicas_to_the_autoscaler() {
        let objects = render_ok(&spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: a}\nspec: {strategy: production}\n",
        ));
        let collector = find(&objects, "Deployment", "a-collector");
        assert_eq!(
            collector["spec"].get("replicas"),
            None,
            "the HPA owns the size"
        );
        assert_eq!(
            find(&objects, "HorizontalPodAutoscaler", "a-collector")["spec"]["minReplicas"],
            1
        );
        assert_eq!(
            find(&objects, "Deployment", "a-query")["spec"]["replicas"],
            1
        );
    }

    #[test]
    fn the_daemonset_agent_uses_host_ports_and_reports_to_the_collector() {
        let s = spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: d, namespace: obs}\nspec: {strategy: production, agent: {strategy: DaemonSet}}\n",
        );
        let objects = render(&s).unwrap();
        let ds = find(&objects, "DaemonSet", "d-agent-daemonset");
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["args"],
            json!(["--reporter.grpc.host-port=d-collector.obs.svc:14250"])
        );
        let compact = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["containerPort"] == 6831)
            .unwrap();
        assert_eq!(compact["hostPort"], 6831);
        assert_eq!(compact["protocol"], "UDP");
        // the sidecar form has no host ports
        let sidecar = sidecar(&s);
        assert!(
            sidecar["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p.get("hostPort").is_none())
        );
    }

    #[test]
    fn a_pass_through_field_kubernetes_would_reject_is_an_error_naming_it() {
        let s = spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: v}\nspec:\n  tolerations: [{key: k, tolerationSeconds: soon}]\n",
        );
        let e = render(&s).unwrap_err().to_string();
        assert!(e.contains("tolerations") && e.contains("Toleration"), "{e}");
        assert!(agent_container(&s, false).is_err());
    }

    #[test]
    fn jaeger_spellings_are_accepted() {
        let s = spoor(
            "apiVersion: spoor.dev/v1\nkind: Spoor\nmetadata: {name: j}\nspec: {strategy: allinone, storage: {type: badger}, agent: {strategy: daemonset}}\n",
        );
        assert_eq!(s.spec.strategy, Strategy::AllInOne);
        assert_eq!(s.spec.storage.kind, StorageType::Embedded);
        assert_eq!(s.spec.agent.strategy, AgentStrategy::DaemonSet);
    }
}
