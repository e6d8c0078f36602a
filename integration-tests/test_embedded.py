"""The embedded store keeps traces across restarts, including a kill -9, on
both engines; the blocks engine's files are Parquet any reader can open."""
import random
import signal
import threading
import time

import pytest
import requests

from test_hardening import otlp_json_trace
from test_otlp import emit, exporter_for

ENGINES = ["redb", "blocks"]


@pytest.mark.parametrize("engine", ENGINES)
def test_traces_survive_kill_9(start_spoor, tmp_path, engine):
    data = tmp_path / "spoor-data"
    first = start_spoor(f"--embedded.data-dir={data}",
                        env={"SPAN_STORAGE_TYPE": "badger", "EMBEDDED_ENGINE": engine})
    emit(exporter_for("grpc", first), "durable-shop")
    [before] = first.wait_for_traces("durable-shop", 2)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    second = start_spoor("--span-storage.type=embedded", f"--embedded.engine={engine}",
                         f"--embedded.data-dir={data}")
    [after] = second.wait_for_traces("durable-shop", 2)
    assert after["traceID"] == before["traceID"]
    assert sorted(s["spanID"] for s in after["spans"]) == sorted(s["spanID"] for s in before["spans"])
    assert second.get("/api/services").json()["data"] == ["durable-shop"]
    assert second.get(f"/api/traces/{before['traceID']}").status_code == 200


@pytest.mark.parametrize("engine", ENGINES)
def test_spans_acknowledged_just_before_kill_9_are_kept(start_spoor, tmp_path, engine):
    """The collector answers after the write on the embedded store: once the
    exporter's flush returns, a kill -9 loses nothing."""
    data = tmp_path / "spoor-data"
    args = ("--span-storage.type=embedded", f"--embedded.engine={engine}", f"--embedded.data-dir={data}")
    first = start_spoor(*args)
    contexts = [emit(exporter_for("http", first), f"acked-{i}") for i in range(5)]
    first.proc.send_signal(signal.SIGKILL)  # no waiting for the writes
    first.proc.wait(timeout=10)

    second = start_spoor(*args)
    for i, (root, _) in enumerate(contexts):
        trace_id = format(root.trace_id, "032x")
        response = second.get(f"/api/traces/{trace_id}")
        assert response.status_code == 200, f"trace of acked-{i} lost"
        assert len(response.json()["data"][0]["spans"]) == 2


def test_acknowledged_spans_survive_kill_9_at_any_point(start_spoor, tmp_path):
    """Four clients write while the process is killed at random moments, many
    times over; heads are cut every few hundred milliseconds, so kills land
    during log appends, block writes, merges and log deletion. Every span a client
    got an acknowledgement for is there afterwards, exactly once."""
    data = tmp_path / "spoor-data"
    args = ("--span-storage.type=embedded", "--embedded.engine=blocks", f"--embedded.data-dir={data}",
            "--embedded.head-bytes=400000", "--embedded.head-age=300ms")
    rng = random.Random(14)
    acked = {}
    lock = threading.Lock()
    counter = iter(range(1, 1 << 30))
    for _ in range(12):
        spoor = start_spoor(*args)
        stop = threading.Event()

        def send():
            while not stop.is_set():
                with lock:
                    n = next(counter)
                trace_id = f"{0xc0de << 64 | n:032x}"
                size = rng.choice((5, 50, 400))
                try:
                    resp = requests.post(spoor.otlp_http + "/v1/traces",
                                         json=otlp_json_trace(trace_id, size, service="crash"),
                                         headers={"content-type": "application/json"}, timeout=10)
                except requests.RequestException:
                    return
                if resp.status_code == 200 and not resp.json().get("partialSuccess"):
                    with lock:
                        acked[trace_id] = size
        senders = [threading.Thread(target=send) for _ in range(4)]
        for t in senders:
            t.start()
        time.sleep(rng.uniform(0.2, 1.5))
        spoor.proc.send_signal(signal.SIGKILL)
        spoor.proc.wait(timeout=10)
        stop.set()
        for t in senders:
            t.join()
    assert len(acked) > 100, f"too few writes acknowledged to tell: {len(acked)}"
    final = start_spoor(*args)
    lost = {}
    for trace_id, size in acked.items():
        body = final.get(f"/api/traces/{trace_id}").json()
        got = len(body["data"][0]["spans"]) if body.get("data") else 0
        if got != size:
            lost[trace_id] = (size, got)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged traces not kept whole: {list(lost.items())[:5]}"
    assert final.metric("spoor_embedded_block_spans") > 0, "no block was ever written"


def test_a_block_opens_in_duckdb(start_spoor, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    data = tmp_path / "spoor-data"
    spoor = start_spoor("--span-storage.type=embedded", "--embedded.engine=blocks",
                        f"--embedded.data-dir={data}", "--embedded.head-age=200ms")
    for i, (service, n) in enumerate([("checkout", 30), ("payments", 12)]):
        resp = requests.post(spoor.otlp_http + "/v1/traces",
                             json=otlp_json_trace(f"{0xd0c << 64 | i:032x}", n, service=service),
                             headers={"content-type": "application/json"}, timeout=10)
        assert resp.status_code == 200
    deadline = time.time() + 15
    while not list((data / "blocks").glob("*.parquet")):
        assert time.time() < deadline, "no block written"
        time.sleep(0.1)
    rows = duckdb.sql(
        f"SELECT service, count(*) FROM read_parquet('{data}/blocks/*.parquet', union_by_name = true) GROUP BY service ORDER BY service"
    ).fetchall()
    assert rows == [("checkout", 30), ("payments", 12)]
    # the typed column of a common attribute, and the times, read as they were sent
    [(low, high, distinct)] = duckdb.sql(
        f"SELECT min(\"tags.i\"), max(\"tags.i\"), count(DISTINCT trace_id) FROM read_parquet('{data}/blocks/*.parquet', union_by_name = true)"
    ).fetchall()
    assert (low, high, distinct) == (0, 29, 2)


def test_a_redb_directory_is_migrated_when_the_blocks_engine_starts(start_spoor, tmp_path):
    data = tmp_path / "spoor-data"
    old = start_spoor("--span-storage.type=embedded", "--embedded.engine=redb", f"--embedded.data-dir={data}")
    root, _ = emit(exporter_for("grpc", old), "from-redb")
    old.wait_for_traces("from-redb", 2)
    assert old.stop() == 0
    assert (data / "spoor.redb").exists()

    new = start_spoor("--span-storage.type=embedded", f"--embedded.data-dir={data}")  # blocks, the default
    body = new.get(f"/api/traces/{root.trace_id:032x}").json()
    assert len(body["data"][0]["spans"]) == 2
    assert not (data / "spoor.redb").exists()
    assert list((data / "blocks").glob("*.parquet"))


def test_an_archived_trace_opens_after_retention_dropped_it(start_spoor, tmp_path):
    """The UI's Archive button (POST /api/archive/{id}) copies a trace into
    the archive store beside the blocks, which retention does not reach."""
    data = tmp_path / "spoor-data"
    args = ("--span-storage.type=embedded", f"--embedded.data-dir={data}",
            "--embedded.retention=2s", "--embedded.head-age=300ms")
    first = start_spoor(*args)
    kept, _ = emit(exporter_for("grpc", first), "archived-shop")
    dropped, _ = emit(exporter_for("grpc", first), "archived-shop")
    first.wait_for_traces("archived-shop", 4)
    kept_id, dropped_id = format(kept.trace_id, "032x"), format(dropped.trace_id, "032x")
    r = requests.post(f"{first.query}/api/archive/{kept_id}", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []
    assert requests.post(f"{first.query}/api/archive/{'ab' * 16}", timeout=10).status_code == 404
    deadline = time.time() + 15  # both traces into blocks before the restart
    while first.metric("spoor_embedded_head_spans") != 0:
        assert time.time() < deadline, "head never cut"
        time.sleep(0.1)
    first.stop()
    time.sleep(2.5)

    # retention's first pass at start drops the blocks older than 2 s
    second = start_spoor(*args)
    deadline = time.time() + 15
    while second.get(f"/api/traces/{dropped_id}").status_code != 404:
        assert time.time() < deadline, "retention never dropped the trace"
        time.sleep(0.2)
    assert second.get("/api/traces", service="archived-shop").json()["data"] == []
    r = second.get(f"/api/traces/{kept_id}")
    assert r.status_code == 200
    assert sorted(s["operationName"] for s in r.json()["data"][0]["spans"]) == ["charge", "checkout"]
    assert second.get(f"/api/v3/traces/{kept_id}").status_code == 200
