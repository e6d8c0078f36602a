"""TLS and bearer tokens on the all-in-one's ports, from real clients: the
OpenTelemetry Python SDK over OTLP gRPC and HTTP with TLS (and mutual TLS)
and a token, the query API over HTTPS with requests, and a certificate
rotated on disk while the server runs. Certificates are made for each run
with the openssl command."""
import ssl
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from conftest import Spoor

INGEST = "ingest-token-it-0123456789"
READER = "reader-token-it-0123456789"
ADMIN = "admin-token-it-0123456789"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=d)


def make_leaf(d: Path, name: str, ca: str, serial: int):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-set_serial", str(serial), "-days", "1", "-extfile", "san.ext",
            "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_leaf(d, "server", "ca", 100)
    make_leaf(d, "rotated", "ca", 101)
    make_ca(d, "clients")
    make_leaf(d, "client", "clients", 200)
    make_ca(d, "stranger")
    make_leaf(d, "intruder", "stranger", 300)
    (d / "tokens").write_text(f"# token name role tenant\n{INGEST} sdk ingest\n{READER} dash read\n{ADMIN} ops admin\n")
    return d


def tls_flags(prefix, pki, client_ca=False):
    flags = [f"--{prefix}.tls.enabled", f"--{prefix}.tls.cert={pki / 'server.pem'}",
             f"--{prefix}.tls.key={pki / 'server-key.pem'}"]
    if client_ca:
        flags.append(f"--{prefix}.tls.client-ca={pki / 'clients.pem'}")
    return flags


@pytest.fixture(scope="module")
def secured(pki):
    s = Spoor([*tls_flags("collector.otlp.grpc", pki), *tls_flags("collector.otlp.http", pki),
               *tls_flags("query.http", pki), f"--auth.tokens-file={pki / 'tokens'}",
               f"--audit.log-file={pki / 'audit.log'}"])
    s.query = s.query.replace("http://", "https://")
    s.otlp_http = s.otlp_http.replace("http://", "https://")
    yield s
    assert s.stop() == 0


def export(exporter, service):
    """Sends one span; the exporter's result."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span):
            results.append(self.span_exporter.export([span]))

    provider.add_span_processor(Recording(exporter))
    with provider.get_tracer("it").start_as_current_span("secure-op", attributes={"k": "v"}):
        pass
    provider.shutdown()
    return results[0]


def grpc_exporter(s, pki, token, client=None):
    ca = (pki / "ca.pem").read_bytes()
    if client:
        creds = grpc.ssl_channel_credentials(ca, (pki / f"{client}-key.pem").read_bytes(),
                                             (pki / f"{client}.pem").read_bytes())
    else:
        creds = grpc.ssl_channel_credentials(ca)
    headers = {"authorization": f"Bearer {token}"} if token else None
    return GrpcExporter(endpoint=s.otlp_grpc, credentials=creds, headers=headers, timeout=5)


def http_exporter(s, pki, token):
    headers = {"authorization": f"Bearer {token}"} if token else None
    # requests lets REQUESTS_CA_BUNDLE in the environment override a
    # session's CA file: a session that ignores the environment keeps ours
    session = requests.Session()
    session.trust_env = False
    return HttpExporter(endpoint=s.otlp_http + "/v1/traces", certificate_file=str(pki / "ca.pem"),
                        headers=headers, timeout=5, session=session)


def traces(s, pki, service, token=READER):
    r = requests.get(s.query + "/api/traces", params={"service": service}, verify=pki / "ca.pem",
                     headers={"authorization": f"Bearer {token}"}, timeout=10)
    return r


def wait_for_span(s, pki, service):
    deadline = time.time() + 15
    while time.time() < deadline:
        r = traces(s, pki, service)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if data:
            return data
        time.sleep(0.1)
    raise AssertionError(f"no trace for {service}")


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_sdk_with_tls_and_a_token_is_stored_and_read_back_over_https(secured, pki, kind):
    make = grpc_exporter if kind == "grpc" else http_exporter
    service = f"tls-{kind}"
    assert export(make(secured, pki, INGEST), service) == SpanExportResult.SUCCESS
    [trace] = wait_for_span(secured, pki, service)
    span = trace["spans"][0]
    assert span["operationName"] == "secure-op"
    assert {"key": "k", "type": "string", "value": "v"} in span["tags"]


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_missing_wrong_and_misplaced_tokens_are_refused_and_nothing_is_stored(secured, pki, kind):
    make = grpc_exporter if kind == "grpc" else http_exporter
    for token, suffix in ((None, "none"), ("wrong-token-0123456789abc", "wrong"), (READER, "reader")):
        service = f"refused-{kind}-{suffix}"
        assert export(make(secured, pki, token), service) == SpanExportResult.FAILURE
        r = traces(secured, pki, service)
        assert r.status_code == 200 and not r.json()["data"], r.text
    metrics = requests.get(secured.admin + "/metrics", timeout=5,
                           headers={"authorization": f"Bearer {ADMIN}"}).text
    assert 'spoor_auth_refused_total{role="Ingest",reason="forbidden"}' in metrics
    assert INGEST not in metrics and READER not in metrics


def test_the_query_api_asks_for_a_read_token_and_says_nothing_more(secured, pki):
    plain = requests.get(secured.query + "/api/services", verify=pki / "ca.pem", timeout=5)
    assert plain.status_code == 401
    assert plain.headers["www-authenticate"] == "Bearer"
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["cache-control"] == "no-store"
    assert plain.json()["errors"][0]["msg"] == "authentication required"
    wrong_role = traces(secured, pki, "x", token=INGEST)
    assert wrong_role.status_code == 403
    assert "sdk" not in wrong_role.text
    ok = requests.get(secured.query + "/api/services", verify=pki / "ca.pem", timeout=5,
                      headers={"authorization": f"Bearer {READER}"})
    assert ok.status_code == 200
    # health on the admin port stays open for probes; metrics do not
    assert requests.get(secured.admin + "/", timeout=5).status_code == 200
    assert requests.get(secured.admin + "/metrics", timeout=5).status_code == 401
    # the audit trail: who read what, and each refusal; never a token
    import json
    text = (pki / "audit.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    reads = [l["fields"] for l in lines if l["fields"]["message"] == "read"]
    assert {"name": "dash", "path": "/api/services"}.items() <= reads[-1].items(), reads
    assert any(l["fields"]["message"].startswith("refused") and l["fields"].get("path") == "/api/traces"
               and l["fields"].get("name") == "sdk" for l in lines), lines
    assert READER not in text and INGEST not in text


def test_clear_text_is_refused_on_a_tls_port(secured):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(secured.query.replace("https://", "http://") + "/api/services", timeout=5)


def served_serial(port, ca):
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "der", "-noout", "-serial"], input=der,
                         capture_output=True, check=True).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def test_mutual_tls_requires_a_client_certificate_of_the_named_ca(pki):
    s = Spoor([*tls_flags("collector.otlp.grpc", pki, client_ca=True)])
    try:
        assert export(grpc_exporter(s, pki, None), "mtls-none") == SpanExportResult.FAILURE
        assert export(grpc_exporter(s, pki, None, client="intruder"), "mtls-bad") == SpanExportResult.FAILURE
        assert export(grpc_exporter(s, pki, None, client="client"), "mtls-ok") == SpanExportResult.SUCCESS
        assert s.wait_for_traces("mtls-ok", 1)
        assert s.metric("spoor_server_tls_handshakes_failed_total", '{listener="OTLP gRPC"}') >= 1
    finally:
        assert s.stop() == 0


def test_a_certificate_rotated_on_disk_is_served_without_a_restart(pki, tmp_path):
    for f in ("server.pem", "server-key.pem"):
        (tmp_path / f).write_bytes((pki / f).read_bytes())
    s = Spoor(["--query.http.tls.enabled", f"--query.http.tls.cert={tmp_path / 'server.pem'}",
               f"--query.http.tls.key={tmp_path / 'server-key.pem'}",
               "--query.http.tls.reload-interval=100ms"])
    try:
        port = s.ports["query_http"]
        assert served_serial(port, pki / "ca.pem") == 100
        (tmp_path / "server-key.pem").write_bytes((pki / "rotated-key.pem").read_bytes())
        (tmp_path / "server.pem").write_bytes((pki / "rotated.pem").read_bytes())
        deadline = time.time() + 10
        serial = 100
        while serial != 101:
            assert time.time() < deadline, "the rotated certificate was not served"
            time.sleep(0.1)
            try:
                serial = served_serial(port, pki / "ca.pem")
            except ssl.SSLError:  # caught between the two files' writes
                pass
        assert s.proc.poll() is None
    finally:
        assert s.stop() == 0


def test_the_agent_forwards_over_tls_with_a_token_and_a_bad_token_is_refused(pki, tmp_path):
    from jaeger_client import Config
    from conftest import Agent
    s = Spoor([*tls_flags("collector.grpc", pki), f"--auth.tokens-file={pki / 'tokens'}"])
    (tmp_path / "good").write_text(INGEST + "\n")
    (tmp_path / "bad").write_text("wrong-token-0123456789abc\n")
    agents = []
    try:
        for name in ("good", "bad"):
            agents.append(Agent(s.ports["grpc"], [
                "--reporter.grpc.tls.enabled", f"--reporter.grpc.tls.ca={pki / 'ca.pem'}",
                "--reporter.grpc.tls.server-name=localhost",
                f"--reporter.grpc.token-file={tmp_path / name}"]))
        for agent, service in zip(agents, ("agent-tls-good", "agent-tls-bad")):
            tracer = Config(config={
                "sampler": {"type": "const", "param": 1},
                "local_agent": {"reporting_host": "127.0.0.1",
                                "reporting_port": agent.ports["compact"]},
            }, service_name=service, validate=True).new_tracer()
            with tracer.start_span("udp-to-tls"):
                pass
            tracer.close()
        deadline = time.time() + 15
        while True:
            r = requests.get(f"http://127.0.0.1:{s.ports['query_http']}/api/traces",
                             params={"service": "agent-tls-good"},
                             headers={"authorization": f"Bearer {READER}"}, timeout=5)
            if r.json()["data"]:
                break
            assert time.time() < deadline, "the agent's span did not arrive over TLS"
            time.sleep(0.1)
        deadline = time.time() + 15
        while agents[1].metric("spoor_agent_forward_failures_total") == 0:
            assert time.time() < deadline, "the agent with a wrong token reported no failure"
            time.sleep(0.2)
        r = requests.get(f"http://127.0.0.1:{s.ports['query_http']}/api/traces",
                         params={"service": "agent-tls-bad"},
                         headers={"authorization": f"Bearer {READER}"}, timeout=5)
        assert not r.json()["data"]
    finally:
        for a in agents:
            assert a.stop() == 0
        assert s.stop() == 0


def test_the_query_api_takes_htpasswd_users_with_basic_auth(tmp_path):
    import bcrypt
    hashed = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "htpasswd").write_text(f"# htpasswd -B\nalice:{hashed}\n")
    s = Spoor([f"--auth.htpasswd-file={tmp_path / 'htpasswd'}"])
    try:
        url = s.query + "/api/services"
        ok = requests.get(url, auth=("alice", "correct horse"), timeout=5)
        assert ok.status_code == 200 and "data" in ok.json()
        wrong = requests.get(url, auth=("alice", "battery staple"), timeout=5)
        assert wrong.status_code == 401
        # a browser shows its sign-in dialog for this challenge
        assert wrong.headers["www-authenticate"] == 'Basic realm="spoor"'
        assert requests.get(url, timeout=5).status_code == 401
        # alice has the read role: the collector's ports refuse her
        r = requests.post(s.otlp_http + "/v1/traces", data=b"", auth=("alice", "correct horse"),
                          headers={"content-type": "application/x-protobuf"}, timeout=5)
        assert r.status_code == 403
    finally:
        assert s.stop() == 0
