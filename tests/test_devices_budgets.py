"""Device budgets and pauses, scenario by scenario: reached, notified once, unpaused for the rest of the period,
until tomorrow, until the cycle resets, kept across a restart, ended with the budget (fake kernel and clocks)."""
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from datacap import config
from datacap.devices import device_db, requests
from test_devices_counting import A, B, MB, Gateway, device, live_doc, started

TZ = ZoneInfo("Europe/Berlin")


def over(g, c, element, n):
    g.traffic(element, n)
    g.tick(c)


def paused_macs(g):
    return g.kernel.paused[0]


def events(folder):
    return [e["key"] for e in live_doc(folder)["events"]]


def test_a_device_at_its_budget_is_paused_in_the_same_tick_and_notified_once(tmp_path):
    g, c = started(tmp_path, budgets={A: {"gb": 0.05, "per": "day"}})
    over(g, c, "down4 10.0.0.10 wan", 49 * MB)
    assert paused_macs(g) == [] and not device(tmp_path, A)["paused"]
    over(g, c, "down4 10.0.0.10 wan", 1 * MB)  # exactly the budget
    a = device(tmp_path, A)
    assert paused_macs(g) == [A] and g.kernel.paused[1] == ["10.0.0.10"] and g.kernel.paused[2] == ["fd00::a"]
    assert device(tmp_path, A)["addresses"] == ["10.0.0.10", "fd00::a"]  # its neighbour entries, before any IPv6 traffic
    assert (a["paused"], a["pause_reason"], a["paused_until"], a["budget_used_bytes"]) == \
        (True, "budget", "2026-11-11T00:00:00+01:00", 50 * MB)
    for _ in range(3):
        over(g, c, "down4 10.0.0.11 wan", MB)
    assert events(tmp_path) == ["device-budget:02:dc:00:00:00:0a:day:2026-11-10"]
    assert [e["name"] for e in device_db.Reader(tmp_path).events()] == ["laptop"]


def test_unpausing_lets_it_through_for_the_rest_of_the_day_and_the_budget_holds_again_tomorrow(tmp_path):
    g, c = started(tmp_path, budgets={A: {"gb": 0.01, "per": "day"}})
    over(g, c, "down4 10.0.0.10 wan", 20 * MB)
    assert paused_macs(g) == [A]
    requests.add(tmp_path, A, "unpause")
    c.devices.poll(g.wall)
    assert paused_macs(g) == []
    over(g, c, "down4 10.0.0.10 wan", 5 * MB)  # over budget, let through: not paused again today
    assert paused_macs(g) == [] and not device(tmp_path, A)["paused"]
    g.advance(12 * 3600)  # the next day: a fresh budget
    over(g, c, "down4 10.0.0.10 wan", 9 * MB)
    assert paused_macs(g) == []
    over(g, c, "down4 10.0.0.10 wan", 1 * MB)
    assert paused_macs(g) == [A]
    assert events(tmp_path) == ["device-budget:02:dc:00:00:00:0a:day:2026-11-11",
                                "device-budget:02:dc:00:00:00:0a:day:2026-11-10"]


def test_a_request_is_applied_once_even_after_a_restart(tmp_path):
    g, c = started(tmp_path)
    requests.add(tmp_path, B, "pause")
    c.devices.poll(g.wall)
    assert paused_macs(g) == [B]
    requests.add(tmp_path, B, "unpause")
    c.devices.poll(g.wall)
    assert paused_macs(g) == []
    c2 = g.collector()  # the requests file still lists both: neither is applied again
    c2.start()
    c2.devices.poll(g.wall)
    assert paused_macs(g) == []


def test_pause_until_tomorrow_ends_at_midnight_and_until_the_cycle_at_the_reset(tmp_path):
    g = Gateway(tmp_path, start=datetime(2026, 11, 30, 23, 0, tzinfo=TZ))
    c = g.collector()
    c.start()
    requests.add(tmp_path, A, "pause", "tomorrow")
    requests.add(tmp_path, B, "pause", "cycle")
    c.devices.poll(g.wall)
    assert sorted(paused_macs(g)) == [A, B]
    assert device(tmp_path, B)["paused_until"] == "2026-12-01T00:00:00+01:00"
    g.tick(c, 3599)
    assert sorted(paused_macs(g)) == [A, B]
    g.tick(c)
    assert paused_macs(g) == []


def test_a_pause_survives_a_restart_and_a_reboot(tmp_path):
    g, c = started(tmp_path, budgets={A: {"gb": 0.01}})
    over(g, c, "down4 10.0.0.10 wan", 20 * MB)
    requests.add(tmp_path, B, "pause")
    c.devices.poll(g.wall)
    assert sorted(paused_macs(g)) == [A, B]
    c.devices.stop(g.wall, c.ledger, c.summaries(g.wall))  # datacap stopped before the reboot
    g.kernel.flush_ruleset()  # a reboot (or a firewall reload) empties the kernel's sets
    c2 = g.collector(budgets={A: {"gb": 0.01}})
    c2.start()
    assert sorted(paused_macs(g)) == [A, B]
    assert device(tmp_path, A)["pause_reason"] == "budget" and device(tmp_path, B)["pause_reason"] == "user"


def test_removing_or_raising_the_budget_ends_its_pause_but_not_a_users(tmp_path):
    g = Gateway(tmp_path)
    cfg = {"budgets": {A: {"gb": 0.01}}}
    c = g.collector(**cfg)
    c.start()
    over(g, c, "down4 10.0.0.10 wan", 20 * MB)
    requests.add(tmp_path, B, "pause")
    c.devices.poll(g.wall)
    raised = config.validate({**c.cfg, "devices": {**c.cfg["devices"], "budgets": {A: {"gb": 1}}}})
    c.reload(raised)
    g.tick(c)
    assert paused_macs(g) == [B]
    over(g, c, "down4 10.0.0.10 wan", 1000 * MB)  # past the raised budget
    assert sorted(paused_macs(g)) == [A, B]
    c.reload(config.validate({**c.cfg, "devices": {**c.cfg["devices"], "budgets": {}}}))
    g.tick(c)
    assert paused_macs(g) == [B]


def test_turning_device_counting_off_removes_our_table_and_with_it_the_pauses(tmp_path):
    g, c = started(tmp_path)
    requests.add(tmp_path, B, "pause")
    c.devices.poll(g.wall)
    c.reload(config.validate({**c.cfg, "devices": None}))
    assert g.kernel.removed == 1 and g.kernel.handle is None
    assert json.loads((tmp_path / "devices.json").read_text())["status"] == "stopped"
    g.tick(c)  # the collector goes on counting the line
    assert g.kernel.handle is None


def test_a_cycle_budget_counts_every_line_and_pauses_until_the_line_resets(tmp_path):
    g, c = started(tmp_path, budgets={A: {"gb": 0.03, "per": "cycle"}})
    over(g, c, "down4 10.0.0.10 wan", 20 * MB)
    g.advance(86400)
    over(g, c, "up4 10.0.0.10 wan", 10 * MB)
    a = device(tmp_path, A)
    assert a["paused"] and a["paused_until"] == "2026-12-01T00:00:00+01:00" and a["today_bytes"] == 10 * MB
