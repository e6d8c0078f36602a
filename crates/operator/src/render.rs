//! From a `Spoor` resource to the objects of its instance, as the Jaeger
//! operator lays them out: Deployments, the agent DaemonSet, Services,
//! Ingress, ConfigMap, ServiceAccount, HPA, PodDisruptionBudgets, the
//! Cassandra schema Job and the dependencies CronJob. Pure: the same
//! resource always renders the same objects (golden-tested).
use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::crd::{
    AgentStrategy, CommonSpec, Component, JobSpec, Options, Spoor, StorageType, Strategy,
};

/// The image tag the operator deploys by default: its own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const SAMPLING_DIR: &str = "/etc/spoor/sampling";

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

/// What every object of an instance shares.
struct Instance<'a> {
    name: String,
    namespace: Option<String>,
    spoor: &'a Spoor,
    owner: Option<Json>,
}

impl<'a> Instance<'a> {
    fn new(spoor: &'a Spoor) -> Instance<'a> {
        let owner = spoor.metadata.uid.as_ref().map(|uid| {
            json!({
                "apiVersion": "spoor.dev/v1",
                "kind": "Spoor",
                "name": spoor.metadata.name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            })
        });
        Instance {
            name: spoor
                .metadata
                .name
                .clone()
                .unwrap_or_else(|| "spoor".into()),
            namespace: spoor.metadata.namespace.clone(),
            spoor,
            owner,
        }
    }

    fn selector(&self, component: &str) -> Json {
        json!({
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
        })
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

    fn metadata(&self, name: &str, component: &str, extra: &BTreeMap<String, String>) -> Json {
        let mut annotations = self.spoor.spec.common.annotations.clone();
        annotations.extend(extra.clone());
        let mut meta = json!({"name": name, "labels": self.labels(component)});
        if !annotations.is_empty() {
            meta["annotations"] = json!(annotations);
        }
        if let Some(ns) = &self.namespace {
            meta["namespace"] = json!(ns);
        }
        if let Some(owner) = &self.owner {
            meta["ownerReferences"] = json!([owner]);
        }
        meta
    }

    /// A pod spec running `containers` with the common spec's pod settings.
    fn pod(&self, common: &CommonSpec, containers: Vec<Json>) -> Json {
        let mut pod = json!({
            "serviceAccountName": common.service_account.as_deref().unwrap_or(&self.name),
            "containers": containers,
        });
        if !common.volumes.is_empty() {
            pod["volumes"] = json!(common.volumes);
        }
        if let Some(affinity) = &common.affinity {
            pod["affinity"] = affinity.clone();
        }
        if !common.tolerations.is_empty() {
            pod["tolerations"] = json!(common.tolerations);
        }
        if let Some(context) = &common.security_context {
            pod["securityContext"] = context.clone();
        }
        pod
    }

    fn object(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        component: &str,
        body: Json,
    ) -> Json {
        let mut object = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": self.metadata(name, component, &BTreeMap::new()),
        });
        for (k, v) in body.as_object().expect("object body") {
            object[k] = v.clone();
        }
        object
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
    ) -> Json {
        let common = self.spoor.spec.common.merged(&c.common);
        let mut arguments = args(&c.options);
        let mut env: Vec<Json> = Vec::new();
        if let Some(kind) = storage {
            env.push(json!({"name": "SPAN_STORAGE_TYPE", "value": kind}));
            if kind != "kafka" {
                arguments.extend(args(&self.spoor.spec.storage.options));
            }
        }
        if matches!(role, "collector" | "all-in-one") && self.sampling_configmap().is_some() {
            arguments.push(format!(
                "--sampling.strategies-file={SAMPLING_DIR}/sampling.json"
            ));
        }
        arguments.sort();
        arguments.dedup();
        env.extend(c.env.iter().cloned());
        let mut container = json!({
            "name": format!("spoor-{role}"),
            "image": c.image.clone().unwrap_or_else(|| format!("spoor/{role}:{VERSION}")),
            "args": arguments,
            "env": env,
            "ports": ports.iter().map(|(name, port, protocol)| json!({
                "name": name, "containerPort": port, "protocol": protocol,
            })).collect::<Vec<_>>(),
            "readinessProbe": {"httpGet": {"path": "/", "port": admin}, "initialDelaySeconds": 1, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/", "port": admin}, "initialDelaySeconds": 5, "periodSeconds": 15, "failureThreshold": 5},
            "resources": common.resources.clone().unwrap_or_else(default_resources),
            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false},
        });
        if storage.is_some()
            && let Some(secret) = &self.spoor.spec.storage.secret_name
        {
            container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
        }
        let mut mounts = common.volume_mounts;
        if matches!(role, "collector" | "all-in-one") && self.sampling_configmap().is_some() {
            mounts.push(json!({"name": "sampling", "mountPath": SAMPLING_DIR, "readOnly": true}));
        }
        if !mounts.is_empty() {
            container["volumeMounts"] = json!(mounts);
        }
        container
    }

    /// `replicas` is the default when the spec names none; `None` leaves the
    /// field out, for a Deployment whose size an autoscaler owns.
    fn deployment(
        &self,
        component: &str,
        c: &Component,
        container: Json,
        replicas: Option<i32>,
    ) -> Json {
        let name = format!("{}-{component}", self.name);
        let common = self.spoor.spec.common.merged(&c.common);
        let mut pod_spec = self.pod(&common, vec![container]);
        if matches!(component, "collector" | "all-in-one")
            && let Some(cm) = self.sampling_configmap()
        {
            let mut volumes = common.volumes.clone();
            volumes.push(json!({"name": "sampling", "configMap": {"name": cm}}));
            pod_spec["volumes"] = json!(volumes);
        }
        let mut labels = self.labels(component);
        labels.extend(c.common.labels.clone());
        let mut annotations = common.annotations;
        annotations.insert("prometheus.io/scrape".into(), "true".into());
        if matches!(component, "collector" | "all-in-one")
            && let Some(file) = self.sampling_file()
        {
            // the collector reads the file at start: a new checksum rolls the pods
            annotations.insert(
                "spoor.dev/sampling-checksum".into(),
                format!("{:016x}", fnv1a(file.as_bytes())),
            );
        }
        let mut deployment = self.object(
            "apps/v1",
            "Deployment",
            &name,
            component,
            json!({
                "spec": {
                    "selector": {"matchLabels": self.selector(component)},
                    "strategy": {"type": "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": pod_spec,
                    },
                },
            }),
        );
        deployment["metadata"] = self.metadata(&name, component, &c.common.annotations);
        deployment["metadata"]["labels"] = json!(labels);
        if let Some(replicas) = c.replicas.or(replicas) {
            deployment["spec"]["replicas"] = json!(replicas);
        }
        deployment
    }

    fn service(
        &self,
        name: &str,
        component: &str,
        ports: &[(&str, i32, &str)],
        headless: bool,
    ) -> Json {
        let mut spec = json!({
            "selector": self.selector(component),
            "ports": ports.iter().map(|(name, port, protocol)| json!({
                "name": name, "port": port, "targetPort": port, "protocol": protocol,
            })).collect::<Vec<_>>(),
        });
        if headless {
            spec["clusterIP"] = json!("None");
        }
        self.object("v1", "Service", name, component, json!({"spec": spec}))
    }

    fn pdb(&self, component: &str) -> Json {
        self.object("policy/v1", "PodDisruptionBudget", &format!("{}-{component}", self.name), component, json!({
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.selector(component)}},
        }))
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
pub fn agent_container(spoor: &Spoor, host_ports: bool) -> Json {
    let instance = Instance::new(spoor);
    let mut agent = spoor.spec.agent.component.clone();
    let collector = format!("{}-collector", instance.name);
    let host = match &instance.namespace {
        Some(ns) => format!("{collector}.{ns}.svc:14250"),
        None => format!("{collector}:14250"),
    };
    agent
        .options
        .entry("reporter".into())
        .or_insert_with(|| json!({"grpc": {"host-port": host}}));
    let mut container = instance.container("agent", &agent, None, AGENT_PORTS, 14271);
    if host_ports {
        for port in container["ports"].as_array_mut().expect("ports") {
            if port["name"] != "admin" {
                port["hostPort"] = port["containerPort"].clone();
            }
        }
    } else if let Some(c) = container.as_object_mut() {
        // a sidecar joins the application's pod, which has none of the
        // instance's volumes
        c.remove("volumeMounts");
    }
    container
}

/// Every object of the instance, in a stable order.
pub fn render(spoor: &Spoor) -> Vec<Json> {
    let i = Instance::new(spoor);
    let spec = &spoor.spec;
    let storage = spec.storage.kind.as_str();
    let mut out = vec![i.object(
        "v1",
        "ServiceAccount",
        &i.name,
        "service-account",
        json!({}),
    )];
    if let (Some(cm), Some(file)) = (i.sampling_configmap(), i.sampling_file()) {
        out.push(i.object(
            "v1",
            "ConfigMap",
            &cm,
            "sampling-configuration",
            json!({
                "data": {"sampling.json": file},
            }),
        ));
    }
    match spec.strategy {
        Strategy::AllInOne => {
            let mut ports: Vec<(&str, i32, &str)> = COLLECTOR_PORTS.to_vec();
            ports.retain(|p| p.0 != "admin");
            ports.extend(QUERY_PORTS.iter().filter(|p| p.0 != "admin"));
            ports.extend(AGENT_PORTS.iter().filter(|p| p.0 != "admin"));
            ports.push(("admin", 14269, "TCP"));
            let c = &spec.all_in_one;
            let container = i.container("all-in-one", c, Some(storage), &ports, 14269);
            let mut deployment = i.deployment("all-in-one", c, container, Some(1));
            // one process owns the store: never two at once
            deployment["spec"]["strategy"] = json!({"type": "Recreate"});
            deployment["metadata"]["name"] = json!(i.name);
            out.push(deployment);
            out.push(i.service(
                &format!("{}-collector", i.name),
                "all-in-one",
                &COLLECTOR_PORTS[..5],
                false,
            ));
            out.push(i.service(
                &format!("{}-query", i.name),
                "all-in-one",
                &QUERY_PORTS[..2],
                false,
            ));
            out.push(i.service(
                &format!("{}-agent", i.name),
                "all-in-one",
                &AGENT_PORTS[..4],
                true,
            ));
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
            );
            let autoscaled = c.autoscale.unwrap_or(true);
            out.push(i.deployment("collector", c, container, (!autoscaled).then_some(1)));
            out.push(i.service(
                &format!("{}-collector", i.name),
                "collector",
                &COLLECTOR_PORTS[..5],
                false,
            ));
            out.push(i.pdb("collector"));
            if autoscaled {
                out.push(i.object("autoscaling/v2", "HorizontalPodAutoscaler", &format!("{}-collector", i.name), "collector", json!({
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("{}-collector", i.name)},
                        "minReplicas": c.min_replicas.unwrap_or(1),
                        "maxReplicas": c.max_replicas.unwrap_or(100),
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}}}],
                    },
                })));
            }
            let q = &spec.query;
            let container = i.container("query", q, Some(storage), QUERY_PORTS, 16687);
            out.push(i.deployment("query", q, container, Some(1)));
            out.push(i.service(
                &format!("{}-query", i.name),
                "query",
                &QUERY_PORTS[..2],
                false,
            ));
            out.push(i.pdb("query"));
            if streaming {
                let g = &spec.ingester;
                let container = i.container(
                    "ingester",
                    g,
                    Some(storage),
                    &[("admin", 14270, "TCP")],
                    14270,
                );
                out.push(i.deployment("ingester", g, container, Some(1)));
            }
            if spec.agent.strategy == AgentStrategy::DaemonSet {
                let common = spec.common.merged(&spec.agent.component.common);
                let mut daemon_pod = i.pod(&common, vec![agent_container(spoor, true)]);
                daemon_pod["dnsPolicy"] = json!("ClusterFirstWithHostNet");
                out.push(i.object(
                    "apps/v1",
                    "DaemonSet",
                    &format!("{}-agent-daemonset", i.name),
                    "agent",
                    json!({
                        "spec": {
                            "selector": {"matchLabels": i.selector("agent")},
                            "template": {
                                "metadata": {"labels": i.labels("agent")},
                                "spec": daemon_pod,
                            },
                        },
                    }),
                ));
            }
            if matches!(
                spec.storage.kind,
                StorageType::Cassandra | StorageType::Elasticsearch
            ) && spec.storage.dependencies.enabled.unwrap_or(true)
            {
                out.push(dependencies_cronjob(&i, storage));
            }
            if spec.storage.kind == StorageType::Cassandra
                && spec.storage.cassandra_create_schema.enabled.unwrap_or(true)
            {
                out.push(cassandra_schema_job(&i));
            }
            if spec.storage.kind == StorageType::Elasticsearch {
                out.extend(elasticsearch_jobs(&i));
            }
        }
    }
    // Jaeger's default: the query service gets an Ingress
    let ingress = spec.ingress.clone().unwrap_or_default();
    if ingress.enabled.unwrap_or(true) {
        let backend =
            json!({"service": {"name": format!("{}-query", i.name), "port": {"number": 16686}}});
        let paths = json!([{"path": "/", "pathType": "Prefix", "backend": backend}]);
        let rules: Vec<Json> = if ingress.hosts.is_empty() {
            vec![json!({"http": {"paths": paths}})]
        } else {
            ingress
                .hosts
                .iter()
                .map(|h| json!({"host": h, "http": {"paths": paths}}))
                .collect()
        };
        let mut spec_json = json!({"rules": rules});
        if let Some(class) = &ingress.ingress_class_name {
            spec_json["ingressClassName"] = json!(class);
        }
        if !ingress.tls.is_empty() {
            spec_json["tls"] = json!(
                ingress
                    .tls
                    .iter()
                    .map(|t| {
                        let mut tls = json!({"hosts": t.hosts});
                        if let Some(s) = &t.secret_name {
                            tls["secretName"] = json!(s);
                        }
                        tls
                    })
                    .collect::<Vec<_>>()
            );
        }
        let mut object = i.object(
            "networking.k8s.io/v1",
            "Ingress",
            &format!("{}-query", i.name),
            "query-ingress",
            json!({"spec": spec_json}),
        );
        if !ingress.annotations.is_empty() {
            let mut all = spec.common.annotations.clone();
            all.extend(ingress.annotations.clone());
            object["metadata"]["annotations"] = json!(all);
        }
        out.push(object);
    }
    out
}

fn tools_container(i: &Instance, command: &str, extra: Vec<String>, storage: &str) -> Json {
    let mut arguments = args(&i.spoor.spec.storage.options);
    arguments.extend(extra);
    let mut container = json!({
        "name": command,
        "image": format!("spoor/tools:{VERSION}"),
        "command": [command],
        "args": arguments,
        "env": [{"name": "SPAN_STORAGE_TYPE", "value": storage}],
        "resources": i.spoor.spec.common.resources.clone().unwrap_or_else(default_resources),
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false},
    });
    if let Some(secret) = &i.spoor.spec.storage.secret_name {
        container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
    }
    if !i.spoor.spec.common.volume_mounts.is_empty() {
        container["volumeMounts"] = json!(i.spoor.spec.common.volume_mounts);
    }
    container
}

/// A Job's pod: the resource's pod settings, restarted on failure.
fn job_pod(i: &Instance, container: Json) -> Json {
    let mut pod = i.pod(&i.spoor.spec.common, vec![container]);
    pod["restartPolicy"] = json!("OnFailure");
    pod
}

fn default_resources() -> Json {
    json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
}

/// A CronJob `<instance>-<component>` running `container` on the job's
/// schedule (or `schedule`), with the job's image, resources and limits.
fn cronjob(
    i: &Instance,
    component: &str,
    job: &JobSpec,
    schedule: &str,
    mut container: Json,
) -> Json {
    if let Some(image) = &job.image {
        container["image"] = json!(image);
    }
    if let Some(resources) = &job.resources {
        container["resources"] = resources.clone();
    }
    let mut job_spec = json!({
        "backoffLimit": job.backoff_limit.unwrap_or(3),
        "template": {
            "metadata": {"labels": i.labels(component)},
            "spec": job_pod(i, container),
        },
    });
    if let Some(ttl) = job.ttl_seconds_after_finished {
        job_spec["ttlSecondsAfterFinished"] = json!(ttl);
    }
    let mut spec = json!({
        "schedule": job.schedule.as_deref().unwrap_or(schedule),
        "concurrencyPolicy": "Forbid",
        "jobTemplate": {"spec": job_spec},
    });
    if let Some(limit) = job.successful_jobs_history_limit {
        spec["successfulJobsHistoryLimit"] = json!(limit);
    }
    i.object(
        "batch/v1",
        "CronJob",
        &format!("{}-{component}", i.name),
        component,
        json!({"spec": spec}),
    )
}

fn dependencies_cronjob(i: &Instance, storage: &str) -> Json {
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
fn elasticsearch_jobs(i: &Instance) -> Vec<Json> {
    let storage = &i.spoor.spec.storage;
    let es_index =
        |extra: &[String]| tools_container(i, "spoor-es-index", extra.to_vec(), "elasticsearch");
    let mut out = Vec::new();
    let cleaner = &storage.es_index_cleaner;
    if cleaner.job.enabled.unwrap_or(true) {
        let days = cleaner.number_of_days.unwrap_or(7);
        let container = es_index(&["clean".into(), format!("--days={days}")]);
        out.push(cronjob(
            i,
            "es-index-cleaner",
            &cleaner.job,
            "55 23 * * *",
            container,
        ));
    }
    if args(&storage.options)
        .iter()
        .any(|a| a == "--es.use-aliases=true")
    {
        let rollover = &storage.es_rollover;
        let name = format!("{}-es-rollover-create-mapping", i.name);
        let init = es_index(&["init".into()]);
        out.push(i.object(
            "batch/v1",
            "Job",
            &name,
            "es-rollover-create-mapping",
            json!({
                "spec": {"backoffLimit": 10, "template": {
                    "metadata": {"labels": i.labels("es-rollover-create-mapping")},
                    "spec": job_pod(i, init),
                }},
            }),
        ));
        let conditions = rollover
            .conditions
            .as_deref()
            .unwrap_or(r#"{"max_age": "1d"}"#);
        let container = es_index(&["rollover".into(), format!("--conditions={conditions}")]);
        out.push(cronjob(
            i,
            "es-rollover",
            &rollover.job,
            "0 0 * * *",
            container,
        ));
        let read_ttl = rollover.read_ttl.as_deref().unwrap_or("24h");
        let container = es_index(&["lookback".into(), format!("--read-ttl={read_ttl}")]);
        out.push(cronjob(
            i,
            "es-lookback",
            &rollover.job,
            "0 0 * * *",
            container,
        ));
    }
    out
}

fn cassandra_schema_job(i: &Instance) -> Json {
    let settings = &i.spoor.spec.storage.cassandra_create_schema;
    let mut container = tools_container(i, "spoor-cassandra-schema", settings.args(), "cassandra");
    if let Some(image) = &settings.image {
        container["image"] = json!(image);
    }
    let mut job = i.object(
        "batch/v1",
        "Job",
        &format!("{}-cassandra-schema-job", i.name),
        "cassandra-schema-job",
        json!({
            "spec": {"backoffLimit": 10, "template": {
                "metadata": {"labels": i.labels("cassandra-schema-job")},
                "spec": job_pod(i, container),
            }},
        }),
    );
    if let Some(ttl) = settings.ttl_seconds_after_finished {
        job["spec"]["ttlSecondsAfterFinished"] = json!(ttl);
    }
    job
}

/// 64-bit FNV-1a: a checksum that stays the same across builds and
/// toolchains, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
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

    fn spoor(yaml: &str) -> Spoor {
        crate::parse(yaml).unwrap()
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
        let objects = render(&spoor(
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
        let objects = render(&spoor(
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
        let objects = render(&spoor(
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
        let objects = render(&spoor(
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
            let objects = render(&spoor(&format!(
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
        let objects = render(&spoor(
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
        let objects = render(&spoor(
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
        let objects = render(&s);
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
        assert_eq!(agent_container(&s, false).get("volumeMounts"), None);
    }

    #[test]
    fn the_cassandra_schema_job_follows_jaegers_create_schema_settings() {
        let render_with = |settings: &str| {
            render(&spoor(&format!(
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
        let objects = render(&spoor(
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
        let objects = render(&s);
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
        let sidecar = agent_container(&s, false);
        assert!(
            sidecar["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p.get("hostPort").is_none())
        );
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
