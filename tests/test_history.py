"""history.json: every ended test is kept (bounded) with its verdict; the API, Reset, DELETE and exports."""
import csv
import io
import json
import signal

import pytest

from datacap import config
from datacap import store
from datacap.measure import history, session_file
from datacap.measure.session import Downloader, State
from datacap.web import create_app


pytestmark = pytest.mark.usefixtures("private_runtime_dir")  # conftest.py


class FakePool:
    """Streams that deliver whatever the test adds to `bytes`."""

    def __init__(self):
        self.n, self.bytes, self.failing, self.since, self.counts = 4, 0, False, None, [0] * 4
        self.last_error, self.error_count = None, 0

    def total_bytes(self):
        return self.bytes

    def in_backoff(self):
        return self.failing

    def failing_since(self):
        return self.since

    def pause(self):
        pass

    def resume(self):
        pass

    def stop(self):
        pass


class Clock:
    def __init__(self):
        self.t, self.wall = 1000.0, 1_800_000_000.0


def session(tmp_path, clock, **cfg):
    pool = FakePool()
    c = config.validate({"stop_at_cap": False, "baseline_seconds": 5, **cfg})
    return Downloader(c, tmp_path, urls=["http://isp.test/file"], clock=lambda: clock.t,
                      wall=lambda: clock.wall, pool=pool), pool


def run_for(d, clock, pool, seconds, mbps):
    for _ in range(int(seconds * 10)):
        clock.t += 0.1
        clock.wall += 0.1
        pool.bytes += int(mbps * 1e6 / 8 * 0.1)
        d.tick()


def test_a_throttled_test_is_kept_with_its_verdict_events_and_points(tmp_path):
    clock = Clock()
    d, pool = session(tmp_path, clock)
    assert d.state is State.CONNECTING
    run_for(d, clock, pool, 60, 80)
    assert d.state is State.RUNNING
    run_for(d, clock, pool, 60, 16)
    d.handle(signal.SIGTERM)
    kept = history.items(store.read_json(tmp_path / history.NAME))
    assert len(kept) == 1
    t = kept[0]
    assert t["id"] == d.session_id and t["status"] == "stopped" and t["throttled"]
    assert t["verdict"].startswith("Throttled after 0.6") and "80.0 → 16." in t["verdict"]
    throttle = [e for e in t["events"] if e["kind"] == "throttle"][0]
    assert throttle["at_gb"] == pytest.approx(0.6, abs=0.02) and throttle["at_cycle_gb"] is not None
    assert t["urls"] == ["http://isp.test/file"] and t["streams"] == 4 and t["baseline_mbps"] == pytest.approx(80, rel=0.02)
    assert 10 <= len(t["points"]) <= history.POINTS_KEPT and t["cycle_gb_at_start"] == 0
    assert "past_sessions" not in json.loads((tmp_path / session_file.NAME).read_text())


def test_a_test_that_never_got_a_byte_is_kept_as_no_server_reachable(tmp_path):
    clock = Clock()
    d, pool = session(tmp_path, clock)

    class Errors:
        def recent(self):
            return [{"url": "http://isp.test/file", "what": "DNS lookup failed: isp.test not found", "count": 3,
                     "time": "2027-01-15T08:00:00+00:00"}]
        all = recent
    pool.url_errors = Errors()
    run_for(d, clock, pool, 5, 0)
    snap = d.snapshot()
    assert snap["status"] == "connecting" and snap["problem"] == "No test server reachable — is the internet down?"
    assert snap["last_error"]["message"] == "DNS lookup failed: isp.test not found"
    d.handle(signal.SIGTERM)
    t = history.items(store.read_json(tmp_path / history.NAME))[0]
    assert t["verdict"] == "No test server reachable — is the internet down?" and t["url_errors"][0]["count"] == 3


def kept(n, throttled=False, **extra):
    ev = [{"kind": "throttle", "start": "2027-01-15T08:01:00+00:00", "end": None, "at_bytes": 5 * 10**8,
           "at_gb": 0.5, "baseline_mbps": 80.0, "throttled_mbps": 10.0}] if throttled else []
    t = {"id": f"t{n}", "status": "stopped", "start": f"2027-01-{n % 28 + 1:02d}T08:00:00+00:00", "total_bytes": 10**9,
         "total_gb": 1.0, "duration_s": 100.0, "baseline_mbps": 80.0, "urls": ["http://isp.test/f"],
         "events": ev, "url_errors": [], "points": [[1, 80.0, 10**7, "2027-01-15T08:00:01+00:00"]], **extra}
    return {**t, "throttled": throttled, "verdict": history.verdict(history.normalize_test(t))}


@pytest.fixture
def client(tmp_path):
    return create_app({}, tmp_path, tmp_path / "c.json").test_client()


def test_two_tests_listed_newest_first_and_reset_keeps_them(tmp_path, client):
    history.append(tmp_path, kept(1, throttled=True))
    history.append(tmp_path, kept(2))
    store.write_json_atomic(tmp_path / session_file.NAME, {"status": "stopped", "session_id": "t2"})
    listed = client.get("/api/history").get_json()
    assert [t["id"] for t in listed["tests"]] == ["t2", "t1"] and listed["count"] == 2
    assert listed["tests"][1]["verdict"].startswith("Throttled after 0.50 GB") and "points" not in listed["tests"][0]
    assert listed["tests"][0]["verdict"].startswith("No throttling in 1.00 GB")
    assert client.post("/api/reset").get_json()["status"] == "idle"
    assert [t["id"] for t in client.get("/api/history").get_json()["tests"]] == ["t2", "t1"]
    one = client.get("/api/history/t1").get_json()
    assert one["points"] and any("throttle is a drop" in s for s in one["method"])
    assert client.get("/api/history/nope").status_code == 404


def test_delete_history_needs_a_confirmation_then_empties_it(tmp_path, client):
    history.append(tmp_path, kept(1))
    r = client.delete("/api/history")
    assert r.status_code == 400 and "confirm" in r.get_json()["error"]
    assert client.get("/api/history").get_json()["count"] == 1
    r = client.delete("/api/history", json={"confirm": True})
    assert r.status_code == 200 and r.get_json()["deleted"] == 1
    assert client.get("/api/history").get_json()["tests"] == []


def test_history_is_bounded_and_only_the_newest_tests_keep_their_points(tmp_path):
    doc = {"tests": [kept(i) for i in range(history.KEPT + 4)]}
    store.write_json_atomic(tmp_path / history.NAME, doc)
    history.append(tmp_path, kept(9999))
    found = history.items(store.read_json(tmp_path / history.NAME))
    assert len(found) == history.KEPT and found[-1]["id"] == "t9999" and found[0]["id"] == "t5"
    assert sum(bool(t["points"]) for t in found) == history.POINTS_TESTS


def test_a_damaged_history_file_is_set_aside_never_overwritten_silently(tmp_path, client):
    (tmp_path / history.NAME).write_text('{"tests": [')
    assert client.get("/api/history").get_json()["tests"] == []
    history.append(tmp_path, kept(1))
    assert (tmp_path / (history.NAME + ".bad")).read_text() == '{"tests": ['
    assert [t["id"] for t in history.items(store.read_json(tmp_path / history.NAME))] == ["t1"]


def test_exports_carry_every_kept_test_and_events_across_tests(tmp_path, client):
    history.append(tmp_path, kept(1, throttled=True))
    history.append(tmp_path, kept(2, throttled=True))
    events = client.get("/api/export?format=json&what=events").get_json()
    assert [(e["test_id"], e["kind"]) for e in events] == [("t1", "throttle"), ("t2", "throttle")]
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export?format=csv&what=history").get_data(as_text=True))))
    assert [r["id"] for r in rows] == ["t2", "t1"] and rows[0]["verdict"].startswith("Throttled")


def test_meta_names_connecting_and_what_it_allows(client):
    meta = client.get("/api/meta").get_json()
    assert "connecting" in meta["statuses"] and "connecting" in meta["live"]
    assert meta["actions"]["connecting"] == ["pause", "stop"]


def test_average_is_never_above_peak_even_before_a_second_has_closed(tmp_path):
    clock = Clock()
    d, pool = session(tmp_path, clock)
    pool.bytes = 5_000_000  # bytes already in when the first sample is taken
    d.tick()
    run_for(d, clock, pool, 0.5, 80)
    snap = d.snapshot()
    assert snap["avg_speed"] > 0 and snap["peak_speed"] >= snap["avg_speed"]
    run_for(d, clock, pool, 5, 80)
    snap = d.snapshot()
    assert snap["peak_speed"] >= snap["avg_speed"]
