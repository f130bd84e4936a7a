"""When the server may start a probe: a fake clock, real files in a temp folder, decide() after each change."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from datacap import store
from datacap.measure.probe import budget
from datacap.measure.probe import file as probe_file
from datacap.supervise import probe_schedule
from datacap.supervise.probe_schedule import ProbeSchedule

NOW = datetime.now().astimezone()
CAP_GB = 100


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def world(tmp_path):
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps({"data_cap_gb": CAP_GB, "probe_interval_minutes": 30, "probe_budget_percent": 1}))
    clock = Clock()
    w = {"clock": clock, "now": NOW, "dir": tmp_path}
    sched = ProbeSchedule(cfg_path, tmp_path, clock=clock, now=lambda: w["now"])
    w["sched"] = sched

    def live(rx_mbps=0.0, used_gb=10.0, present=True):
        store.write_json_atomic(tmp_path / "collector.json", {
            "status": "running", "updated_at": datetime.now(timezone.utc).isoformat(), "interval_seconds": 1,
            "interfaces": {"eth0": {"rx_bytes": 1, "tx_bytes": 1, "rx_bps": None if rx_mbps is None else rx_mbps * 1e6, "tx_bps": 0,
                                    "counted": True, "present": present}},
            "counted": ["eth0"], "days": {NOW.date().isoformat(): {"eth0": [int(used_gb * 1e9), 0]}},
            "monitoring_since": (NOW - timedelta(days=1)).isoformat()})

    def decide_after(seconds, busy=None):
        """Advance the clock in decision steps; the last decision."""
        out = 0
        for _ in range(int(seconds / probe_schedule.DECIDE_EVERY_S) + 1):
            out = sched.decide(lambda: busy)
            clock.t += probe_schedule.DECIDE_EVERY_S
        return out
    w["live"], w["decide_after"] = live, decide_after
    return w


def add_probe(w, minutes_ago=0, mbytes=1, mbps=80.0, stopped_by="settled"):
    summary = w["sched"].cycle.summary(w["sched"].cfg, w["now"])
    probe_file.add(w["dir"], {"id": f"p{minutes_ago}{mbytes}", "cycle_start": summary["start"],
                              "time": (w["now"] - timedelta(minutes=minutes_ago)).isoformat(),
                              "cycle_used_bytes": 10 ** 10, "bytes": mbytes * 10 ** 6, "mbps": mbps, "quiet": True,
                              "stopped_by": stopped_by, "settled": stopped_by == "settled"}, 50)


def test_first_probe_starts_once_the_link_has_been_quiet_for_three_seconds(world):
    world["live"](rx_mbps=0.2)
    assert world["decide_after"](probe_schedule.QUIET_FOR_S - 1) == 0
    assert world["sched"].status["why"] == "waiting for the link to stay quiet"
    allow = world["decide_after"](1.5)
    assert budget.MIN_PROBE_BYTES <= allow <= CAP_GB * 1e9 / 100


def test_no_probe_while_other_traffic_fills_the_link(world):
    add_probe(world, minutes_ago=60, mbps=80)
    world["live"](rx_mbps=75)
    assert world["decide_after"](30) == 0
    assert "the link is busy (75.0 Mbit/s" in world["sched"].status["why"]
    world["live"](rx_mbps=9)  # above a tenth of the last probe's 80 Mbit/s: still busy
    assert world["decide_after"](10) == 0
    world["live"](rx_mbps=2)
    assert world["decide_after"](4) > 0


def test_no_probe_during_a_test_or_another_probe(world):
    world["live"]()
    assert world["decide_after"](10, busy="a test is running") == 0
    assert world["sched"].status["why"] == "a test is running"
    assert world["decide_after"](10, busy=probe_schedule.PROBE_RUNNING) == 0
    assert world["sched"].status["state"] == "running"


def test_next_probe_waits_for_the_interval(world):
    add_probe(world, minutes_ago=20)
    world["live"]()
    assert world["decide_after"](10) == 0
    assert world["sched"].status["why"] == "waiting for the next interval"
    world["now"] = NOW + timedelta(minutes=10, seconds=1)
    assert world["decide_after"](1) > 0


def test_none_after_the_budget_is_spent(world):
    add_probe(world, minutes_ago=120, mbytes=1000)  # 1 % of 100 GB
    world["live"]()
    assert world["decide_after"](10) == 0
    assert world["sched"].status["why"] == "this cycle's probe budget is spent"


def test_probe_size_is_the_budget_paced_over_the_rest_of_the_cycle(world):
    add_probe(world, minutes_ago=180)  # the line settles in 1 MB
    add_probe(world, minutes_ago=120, mbytes=200, stopped_by="cancelled")  # cut short by a test: it counts
    world["live"]()
    allow = world["decide_after"](5)
    resets = datetime.fromisoformat(world["sched"].cycle.summary(world["sched"].cfg, NOW)["resets_at"])
    probes_left = max(1, (resets - NOW).total_seconds() / 1800)
    assert allow == pytest.approx(min(800e6, budget.SHARE_FACTOR * 800e6 / probes_left), rel=0.01)


def test_probes_become_fewer_and_larger_when_the_paced_share_is_below_what_the_line_needs(world):
    (world["dir"] / "config.json").write_text(json.dumps({"data_cap_gb": 5, "probe_interval_minutes": 60,
                                                          "probe_budget_percent": 1}))  # 50 MB a cycle
    world["sched"].reload()
    add_probe(world, minutes_ago=61, mbytes=12)  # an 80 Mbit/s line settled in 12 MB
    world["live"](used_gb=1)
    assert world["decide_after"](5) == 0  # before: a 1 MB probe every hour, each stopped unsettled at its ceiling
    why = world["sched"].status["why"]
    resets = datetime.fromisoformat(world["sched"].cycle.summary(world["sched"].cfg, NOW)["resets_at"])
    spacing_h = (resets - NOW).total_seconds() * 18e6 / 38e6 / 3600  # time left x need / budget left
    assert why == f"pacing: a probe that can settle needs ~18 MB; the budget left allows one every {spacing_h:.1f} h"
    world["now"] = NOW + timedelta(hours=spacing_h + 0.1)
    assert world["decide_after"](1) == 18_000_000


def test_no_probe_when_the_budget_left_cannot_pay_for_one_that_settles(world):
    (world["dir"] / "config.json").write_text(json.dumps({"data_cap_gb": 5, "probe_interval_minutes": 60,
                                                          "probe_budget_percent": 1}))
    world["sched"].reload()
    for days in (25, 20, 15, 10):
        add_probe(world, minutes_ago=days * 1440, mbytes=12)  # 48 of the 50 MB: 2 MB left, an 18-MB need
    world["live"](used_gb=1)
    assert world["decide_after"](5) == 0  # before: a 2 MB probe that stopped at its ceiling, marked unsettled
    assert world["sched"].status["why"] == "the probe budget left (2.0 MB) is less than a probe that can settle needs"


def test_a_probe_that_did_not_settle_makes_the_next_one_larger(world):
    add_probe(world, minutes_ago=600, mbytes=3)  # settled once in 3 MB: the line needs about 4.5
    add_probe(world, minutes_ago=300, mbytes=4, stopped_by="bytes")  # then 4 MB were not enough
    assert budget.need_bytes(probe_file.Reader(world["dir"]).read()) == 8_000_000


def test_none_in_the_last_two_percent_of_the_cap(world):
    world["live"](used_gb=CAP_GB * 0.981)
    assert world["decide_after"](10) == 0
    assert world["sched"].status["why"] == "the cycle is in the last 2 % of the cap"


def test_none_during_an_outage_or_without_the_collector(world):
    world["live"](present=False)
    assert world["decide_after"](10) == 0
    assert world["sched"].status["why"].startswith("outage")
    (world["dir"] / "collector.json").unlink()
    assert world["decide_after"](10) == 0
    assert "collector is not counting" in world["sched"].status["why"]


def test_no_probe_before_the_collector_has_a_rate(world):
    world["live"](rx_mbps=None)
    assert world["decide_after"](10) == 0
    assert world["sched"].status["why"] == "waiting for the collector's first rates"


def test_null_interval_turns_probes_off(world):
    (world["dir"] / "config.json").write_text(json.dumps({"probe_interval_minutes": None}))
    world["sched"].reload()
    world["live"]()
    assert world["decide_after"](10) == 0
    assert world["sched"].status["state"] == "off" and not world["sched"].status["enabled"]


def test_a_failing_schedule_never_stops_the_supervisor(world, monkeypatch):
    runner = probe_schedule.ProbeRunner([], world["dir"] / "config.json", world["dir"], clock=world["clock"],
                                        popen=lambda *a, **k: pytest.fail("no probe may start"),
                                        schedule=world["sched"])
    monkeypatch.setattr(world["sched"], "decide", lambda busy: 1 / 0)
    runner.tick(False, lambda: False, closing=False)
    assert runner.status()["state"] == "error" and "ZeroDivisionError" in runner.status()["why"]
