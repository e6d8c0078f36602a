"""Starts real Spoor binaries on free local ports for the integration tests."""
import functools
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def bin_dir() -> Path:
    if os.environ.get("SPOOR_BIN_DIR"):
        return Path(os.environ["SPOOR_BIN_DIR"])
    # where cargo puts them, whatever CARGO_TARGET_DIR or .cargo/config says
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=REPO,
                          capture_output=True, check=True, text=True).stdout
    return Path(json.loads(meta)["target_directory"]) / "debug"


_handed_out = set()


def free_port() -> int:
    """A loopback port free for both TCP and UDP (the agent ports are UDP),
    never the same twice in one run."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in _handed_out:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port


class Spoor:
    """A running spoor-all-in-one and the addresses of its ports."""

    def __init__(self, extra_args=(), env=None, nofile=None):
        # a port picked free can be taken before the process binds it (by
        # another client's ephemeral port): start again on new ports then
        for attempt in range(3):
            self._start(extra_args, env, nofile)
            try:
                self._wait_healthy()
                return
            except RuntimeError:
                self.log.flush()
                log = Path(self.log.name).read_text(errors="replace")
                if attempt == 2 or "Address already in use" not in log:
                    raise

    def _start(self, extra_args, env, nofile):
        self.ports = {name: free_port() for name in
                      ("grpc", "http", "otlp_grpc", "otlp_http", "query_http", "query_grpc", "admin",
                       "compact", "binary", "sampling", "zipkin", "zipkin_udp")}
        p = self.ports
        args = [
            str(bin_dir() / "spoor-all-in-one"),
            f"--collector.grpc-server.host-port=127.0.0.1:{p['grpc']}",
            f"--collector.http-server.host-port=127.0.0.1:{p['http']}",
            f"--collector.otlp.grpc.host-port=127.0.0.1:{p['otlp_grpc']}",
            f"--collector.otlp.http.host-port=127.0.0.1:{p['otlp_http']}",
            f"--query.http-server.host-port=127.0.0.1:{p['query_http']}",
            f"--query.grpc-server.host-port=127.0.0.1:{p['query_grpc']}",
            f"--admin.http.host-port=127.0.0.1:{p['admin']}",
            f"--processor.jaeger-compact.server-host-port=127.0.0.1:{p['compact']}",
            f"--processor.jaeger-binary.server-host-port=127.0.0.1:{p['binary']}",
            f"--http-server.host-port=127.0.0.1:{p['sampling']}",
            f"--collector.zipkin.host-port=127.0.0.1:{p['zipkin']}",
            f"--processor.zipkin-compact.server-host-port=127.0.0.1:{p['zipkin_udp']}",
            *extra_args,
        ]
        self.log = open(bin_dir().parent / f"spoor-it-{p['admin']}.log", "wb")
        def limit_files():  # soft and hard open-files limit of the child
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env={**os.environ, **(env or {})},
                                     preexec_fn=limit_files if nofile else None)
        self.query = f"http://127.0.0.1:{p['query_http']}"
        self.admin = f"http://127.0.0.1:{p['admin']}"
        self.otlp_http = f"http://127.0.0.1:{p['otlp_http']}"
        self.jaeger_http = f"http://127.0.0.1:{p['http']}"
        self.zipkin = f"http://127.0.0.1:{p['zipkin']}"
        self.otlp_grpc = f"127.0.0.1:{p['otlp_grpc']}"
        self.query_grpc = f"127.0.0.1:{p['query_grpc']}"

    def _wait_healthy(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spoor-all-in-one exited with {self.proc.returncode}")
            try:
                if requests.get(self.admin + "/", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("spoor-all-in-one did not become healthy within 30s")

    def stop(self) -> int:
        if self.proc.poll() is not None:  # already gone (a test killed it)
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def get(self, path, **params):
        return requests.get(self.query + path, params=params, timeout=10)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def metric(self, name, labels=""):
        """The value of one sample, `labels` as Prometheus prints them ('{a="b"}')."""
        for line in requests.get(self.admin + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_for_traces(self, service, expected_spans, **params):
        """Polls the search API until the service's traces hold `expected_spans` spans."""
        deadline = time.time() + 15
        body = None
        while time.time() < deadline:
            body = self.get("/api/traces", service=service, **params).json()
            if sum(len(t["spans"]) for t in body["data"] or []) >= expected_spans:
                return body["data"]
            time.sleep(0.1)
        raise AssertionError(f"no {expected_spans} spans for {service}: {body}")


class Agent:
    """A running spoor-agent that forwards to a collector's gRPC port."""

    def __init__(self, collector_grpc_port, extra_args=()):
        self.ports = {name: free_port() for name in ("compact", "binary", "zipkin", "http", "admin")}
        p = self.ports
        self.proc = subprocess.Popen([
            str(bin_dir() / "spoor-agent"),
            f"--processor.jaeger-compact.server-host-port=127.0.0.1:{p['compact']}",
            f"--processor.jaeger-binary.server-host-port=127.0.0.1:{p['binary']}",
            f"--admin.http.host-port=127.0.0.1:{p['admin']}",
            f"--processor.zipkin-compact.server-host-port=127.0.0.1:{p['zipkin']}",
            f"--http-server.host-port=127.0.0.1:{p['http']}",
            f"--reporter.grpc.host-port=127.0.0.1:{collector_grpc_port}",
            *extra_args,
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.admin = f"http://127.0.0.1:{p['admin']}"
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, f"spoor-agent exited with {self.proc.returncode}"
            try:
                if requests.get(self.admin + "/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, "spoor-agent did not become healthy"
            time.sleep(0.05)

    def metric(self, name):
        for line in requests.get(self.admin + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def agent(spoor):
    a = Agent(spoor.ports["grpc"], ["--agent.tags=host.zone=it,node=${SPOOR_IT_NODE:node-a}"])
    yield a
    assert a.stop() == 0, "spoor-agent must exit 0 on SIGTERM"


@pytest.fixture
def spoor():
    s = Spoor()
    yield s
    assert s.stop() == 0, "spoor-all-in-one must exit 0 on SIGTERM"


@pytest.fixture
def start_spoor():
    started = []

    def start(*args, env=None, nofile=None):
        s = Spoor(args, env, nofile)
        started.append(s)
        return s

    yield start
    for s in started:
        assert s.stop() == 0


class Service:
    """A running Spoor binary with an admin port; `ports` names its listeners."""

    def __init__(self, binary, port_names, args_for, extra_args=(), env=None):
        self.ports = {name: free_port() for name in ("admin", *port_names)}
        self.binary = binary
        self.proc = subprocess.Popen(
            [str(bin_dir() / binary), f"--admin.http.host-port=127.0.0.1:{self.ports['admin']}",
             *args_for(self.ports), *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        self.admin = f"http://127.0.0.1:{self.ports['admin']}"
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, f"{binary} exited with {self.proc.returncode}"
            try:
                if requests.get(self.admin + "/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, f"{binary} did not become healthy"
            time.sleep(0.05)

    def metrics(self, name):
        """Every sample of a metric: {label text: value}."""
        out = {}
        for line in requests.get(self.admin + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                key, value = line.rsplit(" ", 1)
                out[key[len(name):]] = float(value)
        return out

    def stop(self) -> int:
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def tansu_binary():
    for candidate in (os.environ.get("SPOOR_TANSU"), "tansu",
                      str(Path.home() / ".cargo" / "bin" / "tansu")):
        if not candidate:
            continue
        try:
            subprocess.run([candidate, "--help"], capture_output=True, check=True)
            return candidate
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


@pytest.fixture
def kafka():
    """A tansu broker (a Kafka-protocol broker) with the `jaeger-spans` topic; its address."""
    binary = tansu_binary()
    if binary is None:
        if os.environ.get("SPOOR_REQUIRE_KAFKA") == "1":
            pytest.fail("tansu is required: cargo install tansu --locked --features dynostore")
        pytest.skip("tansu is not installed")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "tansu did not start"
            time.sleep(0.05)
    subprocess.run([binary, "topic", "create", "jaeger-spans", "--broker", url, "--partitions", "3"],
                   check=True, capture_output=True)
    yield f"127.0.0.1:{port}"
    proc.kill()
    proc.wait()
