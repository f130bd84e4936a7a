"""Probes against a real link: a fake ISP in a network namespace that throttles on the link's total bytes.

The real server runs the real collector, which counts the veth; probes are the real `downloader.py
--probe` child, started by the server's schedule or (to place them between bursts of other traffic)
by the test, as a user may run one by hand. Needs root (CI has it).
"""
import json
import subprocess
import sys
import time
from datetime import date

import pytest
import requests
from conftest import have_root_networking, need
from harness import ROOT, wait_for
from netns import start_fake_isp
from probe_isp import Background, Controller, veth

from datacap.measure.probe import file as probe_file
from datacap.usage import cycles

MB = 10 ** 6


@pytest.fixture
def isp():
    """(link, ISP-side interface, fake ISP base URL) on a 40 Mbit/s link."""
    need(have_root_networking(), "needs root and `ip netns` for a real link")
    with veth("40mbit") as (link, ns_if):
        proc, url = start_fake_isp(link)
        try:
            yield link, ns_if, url
        finally:
            proc.kill()
            proc.wait()


def start_server(server, link, url, **cfg):
    s = server(interfaces=[link.host_if], test_urls=[f"{url}/stream"], data_cap_gb=1000, **cfg)
    wait_for(lambda: s.get("/api/usage").json()["cycle"]["live"], 10, "the collector to count the link")
    return s


def probe_by_hand(s):
    r = subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--probe", "--config", str(s.config_path),
                        "--data-dir", str(s.data_dir)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return probe_file.Reader(s.data_dir).read()


def test_probes_find_a_throttle_on_total_usage_and_its_lift_within_two_probes(server, isp):
    link, ns_if, url = isp
    s = start_server(server, link, url, probe_interval_minutes=None, probe_budget_percent=100,
                     update_interval_seconds=0.5)
    mark = 150 * MB
    ctl = Controller(link, ns_if, "40mbit", "4mbit", mark).start()
    bg = Background(url)
    try:
        bg.fetch(110 * MB)  # the household's traffic brings the cycle near the mark
        seen, onset_at, lift_at, first_after, first_after_lift = [], None, None, None, None
        for _ in range(40):
            bg.fetch(2 * MB if ctl.crossed_at_bytes is None else 0.3 * MB)
            time.sleep(1.5)  # the collector's live count catches up; the link is quiet again
            doc = probe_by_hand(s)
            seen.append(doc["probes"][-1])
            if first_after is None and ctl.crossed_at_bytes is not None:
                first_after = len(seen)  # this probe is the first after the mark was crossed
            f = doc["findings"][-1] if doc["findings"] else None
            if f and onset_at is None:
                onset_at = len(seen)
            if onset_at and len(seen) == onset_at + 2:
                ctl.lift()  # the ISP lifts it once it has lasted two more probes
            if first_after_lift is None and ctl.lifted_at_bytes is not None:
                first_after_lift = len(seen)
            if f and f["lifted"]:
                lift_at = len(seen)
                break
    finally:
        ctl.close()
    assert first_after is not None and onset_at is not None, [p["mbps"] for p in seen]
    assert onset_at - first_after <= 1, "onset reported within 2 probes after the mark"
    assert abs(f["since_cycle_bytes"] - ctl.crossed_at_bytes) <= 0.05 * mark, (f, ctl.crossed_at_bytes)
    assert f["bracket_bytes"][0] - MB <= ctl.crossed_at_bytes <= f["bracket_bytes"][1] + MB
    assert f["before_mbps"] == pytest.approx(38, rel=0.08) and f["during_mbps"] == pytest.approx(3.8, rel=0.1)
    assert lift_at is not None and lift_at - first_after_lift <= 1, "lift reported within 2 probes after it"
    lo, hi = f["lifted"]["bracket_bytes"]
    assert lo - MB <= ctl.lifted_at_bytes <= hi + MB
    body = s.get("/api/probes").json()
    assert body["findings"][-1]["id"] == f["id"] and not body["throttled"]
    assert body["finding"]["text"].startswith(f"Since ~0.{round(f['since_cycle_bytes'] / 1e7):02d} GB into this cycle")
    assert body["budget"]["spent_bytes"] == sum(p["bytes"] for p in body["probes"])


def test_server_probes_only_once_the_busy_link_is_quiet(server, isp):
    link, ns_if, url = isp
    bg = Background(url).fill()
    try:
        s = start_server(server, link, url, probe_interval_minutes=0.5, probe_budget_percent=50,
                         update_interval_seconds=0.5)
        time.sleep(8)
        body = s.get("/api/probes").json()
        assert body["probes"] == [] and "the link is busy" in body["schedule"]["why"], body["schedule"]
    finally:
        bg.stop()
    body = wait_for(lambda: (b := s.get("/api/probes").json())["probes"] and b, 15, "a probe on the quiet link")
    p = body["probes"][0]
    assert p["quiet"] and p["stopped_by"] == "settled" and p["mbps"] == pytest.approx(38.2, rel=0.05)
    time.sleep(4)  # the next one waits for the interval
    assert len(s.get("/api/probes").json()["probes"]) == 1


def test_no_probe_after_the_budget_is_spent(server, isp, tmp_path):
    link, ns_if, url = isp
    start = cycles.cycle_start(1, date.today()).isoformat()
    data = tmp_path / "s0" / "data"
    data.mkdir(parents=True)
    (data / probe_file.NAME).write_text(json.dumps({"probes": [{
        "id": "spent", "time": "2000-01-01T00:00:00+00:00", "cycle_start": start, "cycle_used_bytes": 0,
        "bytes": 10 * 10 ** 9, "mbps": 38.0, "quiet": True}]}))  # 1 % of 1000 GB
    s = start_server(server, link, url, probe_interval_minutes=0.5, probe_budget_percent=1,
                     update_interval_seconds=0.5)
    time.sleep(8)
    body = s.get("/api/probes").json()
    assert [p["id"] for p in body["probes"]] == ["spent"]
    assert body["schedule"]["why"] == "this cycle's probe budget is spent" and body["budget"]["left_bytes"] == 0


def test_a_long_tests_throttle_event_carries_its_cycle_mark(server, isp):
    link, ns_if, url = isp
    proc, throttling = start_fake_isp(link, rate_mbps=30, throttle_after_mb=60, throttled_mbps=6)
    try:
        s = start_server(server, link, throttling, probe_interval_minutes=None, update_interval_seconds=0.5)
        Background(url).fetch(40 * MB)
        before = wait_for(lambda: (u := s.get("/api/usage").json()["cycle"]["used_bytes"]) >= 40 * MB and u, 5,
                          "the collector to count the household's 40 MB")
        assert s.post("/api/start", json={"streams": 2}).ok
        ev = wait_for(lambda: s.stats()["throttle_events"], 60, "a throttle event")[0]
        assert ev["at_gb"] == pytest.approx(0.06, rel=0.03)
        assert ev["at_cycle_gb"] == pytest.approx((before + ev["at_bytes"]) / 1e9, rel=0.05)
        s.post("/api/stop")
    finally:
        proc.kill()
        proc.wait()


def test_start_stops_a_running_probe_and_the_test_gets_the_link(server, isp):
    link, ns_if, url = isp
    requests.post(f"{url}/control", json={"stall": True}, timeout=5)  # the probe waits for bytes that never come
    s = start_server(server, link, url, probe_interval_minutes=0.5, update_interval_seconds=0.5)
    wait_for(lambda: s.get("/api/probes").json()["schedule"]["running"], 15, "a probe to start")
    requests.post(f"{url}/control", json={"stall": None}, timeout=5)
    assert s.post("/api/start", json={"streams": 1}).ok
    wait_for(lambda: not s.get("/api/probes").json()["schedule"]["running"], 3, "the probe to stop")
    p = wait_for(lambda: s.get("/api/probes").json()["probes"], 5, "the cut-short probe recorded")[-1]
    assert p["stopped_by"] == "cancelled" and p["seconds"] < 8
    wait_for(lambda: s.stats()["speed_mbps"] > 30, 15, "the test to have the link")
    s.post("/api/stop")
