"""The embedded store keeps traces across restarts, including a kill -9."""
import signal

from test_otlp import emit, exporter_for


def test_traces_survive_kill_9(start_spoor, tmp_path):
    data = tmp_path / "spoor-data"
    first = start_spoor(f"--embedded.data-dir={data}", env={"SPAN_STORAGE_TYPE": "badger"})
    emit(exporter_for("grpc", first), "durable-shop")
    [before] = first.wait_for_traces("durable-shop", 2)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    second = start_spoor("--span-storage.type=embedded", f"--embedded.data-dir={data}")
    [after] = second.wait_for_traces("durable-shop", 2)
    assert after["traceID"] == before["traceID"]
    assert sorted(s["spanID"] for s in after["spans"]) == sorted(s["spanID"] for s in before["spans"])
    assert second.get("/api/services").json()["data"] == ["durable-shop"]
    assert second.get(f"/api/traces/{before['traceID']}").status_code == 200


def test_spans_acknowledged_just_before_kill_9_are_kept(start_spoor, tmp_path):
    """The collector answers after the write on the embedded store: once the
    exporter's flush returns, a kill -9 loses nothing."""
    data = tmp_path / "spoor-data"
    first = start_spoor("--span-storage.type=embedded", f"--embedded.data-dir={data}")
    contexts = [emit(exporter_for("http", first), f"acked-{i}") for i in range(5)]
    first.proc.send_signal(signal.SIGKILL)  # no waiting for the writes
    first.proc.wait(timeout=10)

    second = start_spoor("--span-storage.type=embedded", f"--embedded.data-dir={data}")
    for i, (root, _) in enumerate(contexts):
        trace_id = format(root.trace_id, "032x")
        response = second.get(f"/api/traces/{trace_id}")
        assert response.status_code == 200, f"trace of acked-{i} lost"
        assert len(response.json()["data"][0]["spans"]) == 2
