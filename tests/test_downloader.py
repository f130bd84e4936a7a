"""The downloader's state machine on a fake clock with a fake stream pool (no network)."""
import json
import signal
import subprocess
import sys
from datetime import datetime

import pytest

from datacap import config
from datacap import store as jsonstore
from conftest import ROOT
from datacap.measure import history
from datacap.measure.session import Downloader, State
from datacap.web import create_app
from test_throttle import TokenBucket, VolumeThrottle


pytestmark = pytest.mark.usefixtures("private_runtime_dir")  # conftest.py


class FakePool:
    def __init__(self):
        self.n, self.bytes, self.failing, self.since = 4, 0, False, None
        self.last_error, self.error_count, self.paused, self.stopped = None, 0, False, False

    def total_bytes(self):
        return self.bytes

    def in_backoff(self):
        return self.failing

    @property
    def counts(self):  # streams sharing one link evenly
        return [self.bytes // self.n] * self.n

    def failing_since(self):
        return self.since

    def pause(self):
        self.paused = True

    def resume(self):
        self.paused = False

    def stop(self):
        self.stopped = True


class Clock:
    def __init__(self):
        self.t, self.wall = 1000.0, 1_800_000_000.0

    def mono(self):
        return self.t

    def now(self):
        return self.wall


def make(tmp_path, **cfg):
    clock, pool = Clock(), FakePool()
    c = config.validate({"stop_at_cap": False, **cfg})
    d = Downloader(c, tmp_path, urls=["http://x/"], clock=clock.mono, wall=clock.now, pool=pool)
    return d, clock, pool


def run_for(d, clock, pool, seconds, mbps=80.0):
    for _ in range(int(seconds * 10)):
        clock.t += 0.1
        clock.wall += 0.1
        pool.bytes += int(mbps * 1e6 / 8 * 0.1)
        d.tick()


def test_an_outage_is_ridden_out_until_outage_give_up_minutes(tmp_path):
    d, clock, pool = make(tmp_path, outage_give_up_minutes=2)
    run_for(d, clock, pool, 5)
    pool.failing, pool.since, pool.last_error = True, clock.t, {"message": "connection refused"}
    run_for(d, clock, pool, 115, mbps=0)
    assert d.state is State.RUNNING and d.snapshot()["outage"]
    run_for(d, clock, pool, 10, mbps=0)
    assert d.state is State.ERROR and "connection refused" in d.reason and pool.stopped
    saved = json.loads((tmp_path / "downloader.json").read_text())
    assert saved["status"] == "error" and saved["total_bytes"] == pool.bytes


def test_failing_seconds_never_become_a_throttle_event(tmp_path):
    d, clock, pool = make(tmp_path, baseline_seconds=5)
    run_for(d, clock, pool, 15)
    pool.failing = True  # streams in back-off: the rate collapses, but it is not the ISP
    run_for(d, clock, pool, 20, mbps=1)
    assert d.detector.events == []


def test_stop_at_cap_finishes_when_the_cycle_reaches_the_cap(tmp_path):
    today = datetime.now().astimezone().date().isoformat()
    jsonstore.write_json_atomic(tmp_path / "usage.json", {"days": {today: {"eth0": [2_000_000_000, 0]}}})
    d, clock, pool = make(tmp_path, stop_at_cap=True, data_cap_gb=2)
    run_for(d, clock, pool, 1)
    assert d.state is State.FINISHED and d.reason == "data cap reached for this billing cycle"


def test_pause_excludes_time_from_the_average_and_resume_warms_up_again(tmp_path):
    d, clock, pool = make(tmp_path)
    run_for(d, clock, pool, 10)
    d.handle(signal.SIGUSR1)
    assert d.state is State.PAUSED and pool.paused
    run_for(d, clock, pool, 30, mbps=0)
    d.handle(signal.SIGUSR2)
    run_for(d, clock, pool, 10)
    snap = d.snapshot()
    assert snap["session_duration"] == pytest.approx(20, abs=0.3)
    assert snap["avg_speed"] == pytest.approx(80, rel=0.02)


def run_link(d, clock, pool, seconds, link):
    """Like run_for, but the bytes come from a link (tests/test_throttle.py) and only while the pool reads."""
    for _ in range(int(seconds * 10)):
        clock.t += 0.1
        clock.wall += 0.1
        if pool.paused or pool.stopped:
            link.idle(0.1)
        else:
            pool.bytes += int(link.send(0.1))
        d.tick()


def test_an_early_drop_rests_the_line_then_a_volume_throttle_is_told_from_the_start_of_the_test(tmp_path):
    d, clock, pool = make(tmp_path)
    link = VolumeThrottle(100, 30, 150e6)
    run_link(d, clock, pool, 30, link)  # 12 s fast, then a level plateau: the session rests the line
    snap = d.snapshot()
    assert pool.paused and snap["status"] == "running" and snap["speed_mbps"] == 0.0
    assert snap["resting"]["seconds"] == 40
    assert "resting 40 s to see whether the fast rate comes back" in snap["resting"]["why"]
    active = snap["session_duration"]
    d.handle(signal.SIGUSR1)  # a pause and a resume during the rest: the line rests on
    d.handle(signal.SIGUSR2)
    run_link(d, clock, pool, 20, link)
    assert pool.paused and d.snapshot()["session_duration"] == pytest.approx(active, abs=0.2)
    run_link(d, clock, pool, 40, link)
    snap = d.snapshot()
    assert not pool.paused and snap["resting"] is None
    (ev,) = snap["throttle_events"]
    assert ev["from_start"] and ev["at_gb"] == pytest.approx(0.15, rel=0.05)
    assert ev["baseline_mbps"] == pytest.approx(100, rel=0.05)
    assert snap["session_duration"] == pytest.approx(90 - 40, abs=0.5)  # the rest is not test time
    d.handle(signal.SIGTERM)
    (kept,) = history.items(jsonstore.read_json(tmp_path / history.NAME))
    assert kept["verdict"].startswith("Throttled from the start of this test at 0.15 GB: 100 → 30 Mbit/s; the "
                                      "fast rate did not come back after 40 s of rest"), kept["verdict"]


def test_a_speed_boost_that_comes_back_after_the_rest_is_kept_as_a_burst_in_history(tmp_path):
    d, clock, pool = make(tmp_path)
    link = TokenBucket(90, 38, 100e6)
    run_link(d, clock, pool, 150, link)
    snap = d.snapshot()
    assert snap["throttle_events"] == [] and snap["resting"] is None
    (burst,) = [e for e in snap["events"] if e["kind"] == "burst"]
    assert burst["came_back"] and snap["baseline_speed"] == pytest.approx(38, rel=0.03)
    d.handle(signal.SIGTERM)
    (kept,) = history.items(jsonstore.read_json(tmp_path / history.NAME))
    assert not kept["throttled"] and kept["burst"]["came_back"]
    assert f"speed boost: ~{burst['bytes'] / 1e6:.0f} MB at 90 Mbit/s, fast again after" in kept["verdict"]


def test_a_test_stopped_during_the_rest_says_the_check_could_not_tell(tmp_path):
    d, clock, pool = make(tmp_path)
    run_link(d, clock, pool, 30, VolumeThrottle(100, 30, 150e6))
    assert d.snapshot()["resting"]
    d.handle(signal.SIGTERM)
    (kept,) = history.items(jsonstore.read_json(tmp_path / history.NAME))
    assert kept["status"] == "stopped" and not kept["throttled"] and kept["burst"]["came_back"] is None
    assert kept["verdict"].endswith("MB at 100 Mbit/s, then 30 Mbit/s sustained; the test ended before a rest could "
                                    "tell a speed boost from a throttle."), kept["verdict"]


def test_wall_clock_jumps_do_not_touch_speeds(tmp_path):
    d, clock, pool = make(tmp_path)
    run_for(d, clock, pool, 10)
    clock.wall -= 3600  # NTP steps back an hour
    run_for(d, clock, pool, 5)
    clock.wall += 86400  # and forward a day
    run_for(d, clock, pool, 5)
    snap = d.snapshot()
    assert snap["speed_mbps"] == pytest.approx(80, rel=0.02) and snap["avg_speed"] == pytest.approx(80, rel=0.02)
    assert snap["session_duration"] == pytest.approx(20, abs=0.3)


def test_throttle_events_survive_a_server_restart(tmp_path):
    event = {"start": "2026-11-23T10:00:00+00:00", "at_bytes": 5, "at_gb": 0.0, "baseline_mbps": 90.0,
             "throttled_mbps": 9.0, "end": None}
    jsonstore.write_json_atomic(tmp_path / "downloader.json", {"status": "running", "pid": 999_999_999,
                                                               "throttle_events": [event], "throttle_detected": True})
    client = create_app({}, tmp_path, tmp_path / "c.json").test_client()  # a new server: no such process
    s = client.get("/api/stats", headers={"Host": "127.0.0.1"}).get_json()
    assert s["status"] == "stopped" and s["reason"] == "interrupted"
    assert s["throttle_events"] == [event] and s["throttle_detected"] is False


def test_by_hand_arguments_are_validated(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--data-dir", str(tmp_path), "--streams", "0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--streams must be a whole number from 1 to 64" in r.stderr


def test_data_folder_is_written_on_what_matters_and_the_live_copy_every_second(tmp_path, monkeypatch):
    writes = []
    real = jsonstore.write_json_atomic
    monkeypatch.setattr(jsonstore, "write_json_atomic",
                        lambda p, o, fsync=True: (writes.append((p.parent == tmp_path, fsync)), real(p, o, fsync))[1])
    d, clock, pool = make(tmp_path)
    assert d.live_path != d.path  # tmpfs here
    run_for(d, clock, pool, 30)
    durable = [f for in_data, f in writes if in_data]
    assert durable == [True] and len(writes) - len(durable) >= 29  # the start in data/, fsynced; then live only
    d.handle(signal.SIGUSR1)
    assert writes[-2] == (True, True)  # RUNNING -> PAUSED is durable
    run_for(d, clock, pool, 65, mbps=0)
    assert [f for in_data, f in writes if in_data] == [True] * 3  # and once a minute
    assert all(not f for in_data, f in writes if not in_data)


def test_a_session_whose_file_cannot_be_saved_says_so_live_and_in_healthz(tmp_path, monkeypatch):
    d, clock, pool = make(tmp_path)
    real = jsonstore.write_json_atomic

    def disk_full(p, o, fsync=True):
        if p.parent == tmp_path:
            raise OSError(28, "No space left on device")
        return real(p, o, fsync)
    monkeypatch.setattr(jsonstore, "write_json_atomic", disk_full)
    run_for(d, clock, pool, 5)
    live = json.loads(d.live_path.read_text())
    assert live["status"] == "running" and live["total_bytes"] > 0
    assert live["save_error"] == "cannot save downloader.json: No space left on device"
    app = create_app({}, tmp_path, tmp_path / "c.json")
    stats = app.test_client().get("/api/stats").get_json()
    assert stats["total_bytes"] == live["total_bytes"] and stats["status"] == "running"
    h = app.test_client().get("/healthz").get_json()
    assert "downloader: cannot save downloader.json: No space left on device" in h["reasons"]


def test_sighup_applies_a_new_threshold_to_the_running_detector(tmp_path):
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps({"stop_at_cap": False, "throttle_threshold_percent": 50}))
    d, clock, pool = make(tmp_path, throttle_threshold_percent=50)
    d.config_path = cfg_path
    run_for(d, clock, pool, 20, mbps=80)
    assert d.detector.baseline_bps is not None
    run_for(d, clock, pool, 15, mbps=56)  # -30 %: no throttle at a 50 % threshold
    assert d.detector.events == []
    cfg_path.write_text(json.dumps({"stop_at_cap": False, "throttle_threshold_percent": 20}))
    d.handle(signal.SIGHUP)
    run_for(d, clock, pool, 15, mbps=56)  # -30 % is a throttle at 20 %
    assert d.snapshot()["threshold_percent"] == 20 and len(d.detector.events) == 1
