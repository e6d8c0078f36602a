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
