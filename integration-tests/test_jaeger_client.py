"""The real Python jaeger-client reports over UDP (Thrift compact) to a
spoor-agent process, which forwards over gRPC to spoor-all-in-one's collector;
the spans come back through /api/traces with every field intact."""
import json
import time

from jaeger_client import Config


def test_python_jaeger_client_through_the_agent(spoor, agent):
    config = Config(config={
        "sampler": {"type": "const", "param": 1},
        "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": agent.ports["compact"]},
        "tags": {"team": "payments"},
    }, service_name="py-jaeger-client", validate=True)
    tracer = config.new_tracer()
    with tracer.start_span("checkout", tags={"http.method": "POST", "retries": 3, "ratio": 0.5, "ok": True}) as root:
        sent_trace_id, sent_span_id = root.context.trace_id, root.context.span_id
        root.set_baggage_item("user", "alice")
        root.log_kv({"event": "cache-miss", "cart.items": 7})
        with tracer.start_span("charge", child_of=root) as child:
            child.set_tag("error", True)
    tracer.close()

    [trace] = spoor.wait_for_traces("py-jaeger-client", 2)
    spans = {s["operationName"]: s for s in trace["spans"]}
    root, child = spans["checkout"], spans["charge"]
    assert trace["traceID"] == format(sent_trace_id, "016x")
    assert root["spanID"] == format(sent_span_id, "016x")

    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert tags["http.method"] == ("string", "POST")
    assert tags["retries"] == ("int64", 3)
    assert tags["ratio"] == ("float64", 0.5)
    assert tags["ok"] == ("bool", True)
    assert tags["sampler.type"] == ("string", "const")
    assert root["flags"] & 1 == 1

    logs = [{f["key"]: f["value"] for f in log["fields"]} for log in root["logs"]]
    assert {"event": "baggage", "key": "user", "value": "alice"} in logs
    assert {"event": "cache-miss", "cart.items": 7} in logs

    assert child["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": root["spanID"]}]
    assert {"key": "error", "type": "bool", "value": True} in child["tags"]

    process = trace["processes"][root["processID"]]
    assert process["serviceName"] == "py-jaeger-client"
    ptags = {t["key"]: t["value"] for t in process["tags"]}
    assert ptags["team"] == "payments"
    assert ptags["jaeger.version"].startswith("Python-")
    assert "hostname" in ptags and "ip" in ptags
    assert ptags["host.zone"] == "it" and ptags["node"] == "node-a", "agent tags added"

    deadline = time.time() + 10
    while agent.metric("spoor_agent_spans_forwarded_total") < 2:
        assert time.time() < deadline
        time.sleep(0.1)
    assert agent.metric("spoor_agent_decode_errors_total") == 0



def test_node_jaeger_client_sends_thrift_binary_through_the_agent(spoor, agent):
    import subprocess
    from pathlib import Path
    script = Path(__file__).parent / "node" / "report.js"
    out = subprocess.run(["node", str(script), str(agent.ports["binary"]), "node-jaeger-client"],
                         capture_output=True, text=True, timeout=60, check=True)
    sent_trace_id = out.stdout.strip()

    [trace] = spoor.wait_for_traces("node-jaeger-client", 2)
    assert int(trace["traceID"], 16) == int(sent_trace_id, 16)
    spans = {s["operationName"]: s for s in trace["spans"]}
    root, child = spans["render"], spans["fetch-user"]
    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    # JavaScript numbers travel as Thrift doubles
    assert tags["http.status_code"] == ("float64", 200)
    assert tags["cache.hit"] == ("bool", False)
    logs = [{f["key"]: f["value"] for f in log["fields"]} for log in root["logs"]]
    assert {"event": "template-loaded", "size": 1024} in logs
    assert child["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": root["spanID"]}]
    assert {"key": "db.type", "type": "string", "value": "sql"} in child["tags"]
    ptags = {t["key"]: t["value"] for t in trace["processes"][root["processID"]]["tags"]}
    assert ptags["node.team"] == "web"
    assert ptags["jaeger.version"].startswith("Node-")
    assert ptags["host.zone"] == "it"
    assert agent.metric('spoor_agent_spans_received_total{protocol="jaeger_binary"}') == 2


def remote_sampled_tracer(agent, service):
    """A tracer with no sampler configured: it polls the agent's 5778 (its remote sampler)."""
    config = Config(config={
        "sampling_refresh_interval": 0.2,
        "reporter_flush_interval": 0.1,
        "local_agent": {
            "reporting_host": "127.0.0.1",
            "reporting_port": agent.ports["compact"],
            "sampling_port": agent.ports["http"],
        },
    }, service_name=service, validate=True)
    return config.new_tracer()


def test_remote_sampler_gets_its_strategy_from_the_agent(start_spoor):
    from conftest import Agent
    spoor = start_spoor("--sampling.default-sampling-probability=0.37")
    agent = Agent(spoor.ports["grpc"])
    try:
        tracer = remote_sampled_tracer(agent, "py-remote-sampled")
        deadline = time.time() + 15
        while "0.37" not in str(tracer.sampler.sampler):
            assert time.time() < deadline, f"sampler never updated: {tracer.sampler.sampler}"
            time.sleep(0.1)
        assert type(tracer.sampler.sampler).__name__ == "ProbabilisticSampler"
        assert tracer.sampler.sampler.rate == 0.37
        tracer.close()
        assert agent.metric("spoor_agent_sampling_requests_total") >= 1
    finally:
        assert agent.stop() == 0


def test_per_operation_strategies_from_a_file_steer_the_client(start_spoor, tmp_path):
    from conftest import Agent
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({
        "default_strategy": {"type": "probabilistic", "param": 0.5},
        "service_strategies": [{
            "service": "py-per-op", "type": "probabilistic", "param": 0.0,
            "operation_strategies": [
                {"operation": "checkout", "type": "probabilistic", "param": 1.0},
                {"operation": "health", "type": "probabilistic", "param": 0.0},
            ],
        }],
    }))
    spoor = start_spoor(f"--sampling.strategies-file={strategies}")
    agent = Agent(spoor.ports["grpc"])
    try:
        tracer = remote_sampled_tracer(agent, "py-per-op")
        deadline = time.time() + 15
        while type(tracer.sampler.sampler).__name__ != "AdaptiveSampler":
            assert time.time() < deadline, f"per-operation strategy never arrived: {tracer.sampler.sampler}"
            time.sleep(0.1)
        decisions = {"checkout": set(), "health": set(), "other": set()}
        for _ in range(20):
            for op in decisions:
                with tracer.start_span(op) as span:
                    decisions[op].add(span.is_sampled())
        assert decisions == {"checkout": {True}, "health": {False}, "other": {False}}
        tracer.close()

        [trace] = spoor.wait_for_traces("py-per-op", 1, limit=1)
        assert trace["spans"][0]["operationName"] == "checkout"
        ops = {o["name"] for o in spoor.get("/api/operations", service="py-per-op").json()["data"]}
        assert ops == {"checkout"}, "unsampled operations never reached the backend"
    finally:
        assert agent.stop() == 0


def test_adaptive_sampling_adjusts_a_busy_operation(start_spoor):
    from conftest import Agent
    # about 1,000 traces/s at the initial 0.001 give 1 sample/s; the target is 5
    spoor = start_spoor("--sampling.config-type=adaptive", "--sampling.calculation-interval=1s",
                        "--sampling.leader-lease=3s", "--sampling.target-samples-per-second=5")
    agent = Agent(spoor.ports["grpc"])
    try:
        tracer = remote_sampled_tracer(agent, "py-adaptive")

        def busy_probability():
            sampler = tracer.sampler.sampler
            samplers = getattr(sampler, "samplers", {})
            return samplers["busy"].probabilistic_sampler.rate if "busy" in samplers else None

        deadline = time.time() + 30
        while busy_probability() in (None, 0.001):
            assert time.time() < deadline, "the busy operation never got its own probability"
            for _ in range(50):
                tracer.start_span("busy").finish()
            time.sleep(0.05)
        assert 0.001 < busy_probability() <= 1.0
        tracer.close()
        import requests
        metrics = requests.get(spoor.admin + "/metrics").text
        assert "spoor_sampling_leader 1" in metrics
        counted = [l for l in metrics.splitlines() if l.startswith("spoor_sampling_root_spans_counted_total ")]
        assert counted and float(counted[0].split()[1]) > 0
    finally:
        assert agent.stop() == 0


def test_python_jaeger_client_to_the_all_in_ones_own_agent(spoor):
    """The all-in-one's agent ports hand spans to its collector in process
    (no gRPC between them): counted under transport="agent"."""
    config = Config(config={
        "sampler": {"type": "const", "param": 1},
        "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": spoor.ports["compact"]},
    }, service_name="py-in-process", validate=True)
    tracer = config.new_tracer()
    with tracer.start_span("order", tags={"order.id": "o-17"}) as root:
        with tracer.start_span("reserve", child_of=root):
            pass
    tracer.close()

    [trace] = spoor.wait_for_traces("py-in-process", 2, tags=json.dumps({"order.id": "o-17"}))
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert spans["reserve"]["references"][0]["spanID"] == spans["order"]["spanID"]
    assert spoor.metric("spoor_collector_spans_received_total", '{transport="agent"}') >= 2
    assert spoor.metric("spoor_agent_spans_forwarded_total") >= 2
