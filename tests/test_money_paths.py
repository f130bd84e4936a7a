"""The money paths at their edges (issue: numbers that survive everything): fake clocks, counters and routers."""
from datetime import date, datetime, timedelta

import pytest

from datacap import config, store
from datacap.measure.cap_guard import WIRE_PER_PAYLOAD, CapGuard
from datacap.usage import plan, sources
from datacap.usage.sources import feed as feedmod
from datacap.usage.sources.router import RouterSource
from datacap.web import create_app
from test_collector import TZ, Machine, cycle_summary, line, reasons, used

GB = 10 ** 9


class FakeRouter(RouterSource):
    """A router whose answers the test sets; poll() reads one at once (no event loop)."""
    kind = "upnp"

    def __init__(self, spec, counts, clock):
        super().__init__(spec, counts, clock)
        self.url = spec.get("url", "http://192.0.2.1:5555/rootDesc.xml")
        self.target = self.url.split("/")[2].split(":")[0]

    def label(self):
        return f"Router {self.target} (fake)"

    def start(self, loop):
        pass

    def poll(self, rx, tx=0, wide=True, uptime=None, link=None):
        reading = self._judge(rx, tx, wide, uptime, link)
        if reading is not None:
            self._fresh = self._fresh + [reading]


class Gateway:
    """The household's router as the collector's sources see it: found by "auto", polled through FakeRouter."""

    def __init__(self, monkeypatch, m):
        self.m, self.rx, self.made = m, 10 * GB, []
        self.uptime = 1000.0
        real = sources.router_source

        def make(spec, line, clock):
            if spec.get("url") is None and spec["type"] == "upnp":
                search = real(spec, line, clock)
                search._search, search._gateways = (lambda: ["http://192.0.2.1:5555/rootDesc.xml"]), (lambda: {"192.0.2.1"})
                search.start = search.search_once
                return search
            r = FakeRouter(spec, line is not None, lambda: self.m.t)
            r.line = line
            self.made.append(r)
            return r
        monkeypatch.setattr(sources, "router_source", make)
        monkeypatch.setattr(feedmod, "router_source", make)

    def traffic(self, nbytes, seconds=5):
        """The household moves nbytes through the router (this machine's share is its own business)."""
        self.m.advance(seconds)
        self.rx += nbytes
        self.uptime += seconds

    def answer(self):
        self.made[-1].poll(self.rx, 0, True, self.uptime)


# -- 1. stop_at_cap whatever the collector does ------------------------------------------------------

def count_of(tmp_path, used_gb, age_s, live=True):
    """A collector's live file holding `used_gb` this cycle, written `age_s` seconds ago."""
    now = datetime.now().astimezone()
    at = now - timedelta(seconds=age_s)
    store.write_json_atomic(tmp_path / "collector.json", {
        "status": "running" if live else "stopped", "updated_at": at.isoformat(), "count_as_of": at.timestamp(),
        "interval_seconds": 60 if live else 1,
        "lines": {"Internet": {"days": {now.date().isoformat(): {"eth0": [int(used_gb * GB), 0]}},
                               "monitoring_since": (now - timedelta(days=2)).isoformat()}}})
    return now


def run_guard(tmp_path, started, rate_bps, seconds, cap_gb=100):
    """A session at rate_bps from `started`; the first second (and bytes) at which the guard says stop."""
    cfg = config.validate({"data_cap_gb": cap_gb, "sources": [{"type": "local"}]})
    guard = CapGuard(tmp_path, started.timestamp())
    for tick in range(int(seconds * 10)):
        t = tick / 10
        if guard.reached(cfg, int(rate_bps * t), started.timestamp() + t, t):
            return t, int(rate_bps * t), guard
    return None, None, guard


def test_stop_at_cap_adds_every_byte_since_a_count_older_than_its_memory_collector_dead(tmp_path):
    started = count_of(tmp_path, 95, age_s=0, live=False)  # 95 of 100 GB counted; then the collector died
    t, moved, guard = run_guard(tmp_path, started, 125e6, 120)  # 1 Gbit/s
    assert moved * WIRE_PER_PAYLOAD <= 5 * GB + 125e6 * 0.6, moved  # at the cap (one check period), not 37.5 GB on
    assert t == pytest.approx(5 * GB / 125e6 / WIRE_PER_PAYLOAD, abs=0.6) and "not counting" in guard.stop["words"]


def test_stop_at_cap_with_a_60_s_interval_counts_the_session_since_the_count_not_its_last_20_s(tmp_path):
    started = count_of(tmp_path, 97.5, age_s=0)  # a slow interval: the count will be up to 60 s old
    t, moved, _ = run_guard(tmp_path, started, 125e6, 60)
    assert moved * WIRE_PER_PAYLOAD <= 2.5 * GB + 125e6 * 0.6
    assert t == pytest.approx(2.5 * GB / 125e6 / WIRE_PER_PAYLOAD, abs=0.6)


def test_stop_at_cap_without_any_count_counts_the_whole_session(tmp_path):
    started = datetime.now().astimezone()
    t, moved, guard = run_guard(tmp_path, started, 125e6, 20, cap_gb=1)
    assert moved <= GB + 125e6 * 0.6 and "no count from the collector" in guard.stop["words"]


def test_the_stop_reason_says_which_figure_it_stopped_on(tmp_path):
    started = count_of(tmp_path, 99, age_s=0)
    _, _, guard = run_guard(tmp_path, started, 125e6, 20)
    s = guard.stop
    assert s["live"] and s["used_bytes"] == 99 * GB and s["session_bytes_since"] > 0.9 * GB
    assert s["words"].startswith("100.0") and " of 100 GB: datacap's count as of " in s["words"]
    assert "(live), plus this test's" in s["words"]


# -- 2. "auto" remembers its gateway; 3. a settings save continues from memory ---------------------------

def promoted_collector(tmp_path, monkeypatch):
    m = Machine()
    gw = Gateway(monkeypatch, m)
    live = tmp_path / "run"
    live.mkdir()
    c = m.collector(tmp_path, live_dir=live, sources="auto", interfaces=["eth0"])
    c.start()
    for _ in range(4):  # growing readings: the gateway counts from the fourth on
        gw.traffic(100_000_000)
        m.advance(0, rx=100_000_000)
        c.tick()
        gw.answer()
    c.tick()
    assert c.routers.promoted and c.counting() == ["upnp:192.0.2.1"]
    return m, gw, c, live


def test_auto_remembers_the_gateway_it_counts_across_a_collector_restart(tmp_path, monkeypatch):
    m, gw, a, live = promoted_collector(tmp_path, monkeypatch)
    before = a.summary(m.wall)["used_bytes"]
    a.flush(m.t, m.wall)
    # SIGKILL; the household moves 5.1 GB through the router while the collector is down (this machine 1 MB)
    gw.traffic(5_100_000_000, seconds=60)
    m.advance(0, rx=1_000_000)
    b = m.collector(tmp_path, live_dir=live, sources="auto", interfaces=["eth0"])
    b.start()
    assert b.counting() == ["upnp:192.0.2.1"]  # at once, not after three more readings
    gw.answer()
    b.tick()
    assert b.summary(m.wall)["used_bytes"] - before == 5_100_000_000  # was 0.061 GB


def with_live_copy(tmp_path):
    """A machine and a started collector whose live copy goes to a tmpfs-like folder of its own."""
    m = Machine()
    live = tmp_path / "run"
    live.mkdir()
    a = m.collector(tmp_path, live_dir=live)
    a.start()
    return m, a, live


def test_a_collector_killed_between_flushes_continues_from_its_live_copy_with_nothing_twice(tmp_path):
    m, a, live = with_live_copy(tmp_path)
    for _ in range(30):  # not flushed: FLUSH_S is 60 s
        m.advance(1, rx=5_000_000)
        a.tick()
    m.advance(20, rx=7_000_000)  # SIGKILL, 20 s with nobody counting
    b = m.collector(tmp_path, live_dir=live)
    b.start()
    assert used(b) == 157_000_000 and line(b)["days"] == line(a)["days"] | {
        m.wall.date().isoformat(): {"eth0": [157_000_000, 0]}}


def test_a_live_copy_that_does_not_descend_from_the_flush_on_disk_is_ignored(tmp_path):
    m, a, live = with_live_copy(tmp_path)
    m.advance(1, rx=1_000)
    a.tick()
    a.flush(m.t, m.wall)
    backup = (tmp_path / "usage.json").read_text()
    m.advance(1, rx=2_000)
    a.tick()
    a.flush(m.t, m.wall)
    m.advance(1, rx=4_000)
    a.tick()  # the live copy: 7,000 B, one flush after `backup`
    (tmp_path / "usage.json").write_text(backup)  # the user puts an older ledger back
    b = m.collector(tmp_path, live_dir=live)
    assert used(b) == 1_000


def test_a_settings_save_continues_the_router_from_the_readings_in_memory_not_the_last_flush(tmp_path, monkeypatch):
    m = Machine()
    gw = Gateway(monkeypatch, m)
    snmp = [{"type": "upnp", "url": "http://192.0.2.1:5555/rootDesc.xml", "interval_seconds": 5}]
    c = m.collector(tmp_path, sources=snmp)
    c.start()
    for _ in range(12):  # 1 GB in a minute, none of it flushed
        gw.traffic(1 * GB / 12)
        gw.answer()
        c.tick()
    counted = c.summary(m.wall)["used_bytes"]
    c.reload(config.validate({**c.cfg, "sources": [{**snmp[0], "interval_seconds": 2}]}))  # only the interval
    gw.answer()
    c.tick()
    assert c.summary(m.wall)["used_bytes"] == counted  # was +1.0 GB with no traffic


# -- 8. a router's reboot is no wrap; the first reading after a restart knows its time -------------------

def test_a_router_reboot_shown_by_its_uptime_is_a_reset_not_a_wrap(tmp_path, monkeypatch):
    m = Machine()
    gw = Gateway(monkeypatch, m)
    c = m.collector(tmp_path, sources=[{"type": "upnp", "url": "http://192.0.2.1:5555/rootDesc.xml"}])
    c.start()
    gw.made[-1].poll(3_000_000_000, 0, False, 5000)
    c.tick()
    m.advance(5)
    gw.made[-1].poll(100_000_000, 0, False, 60)  # 32-bit counters, 3.0 -> 0.1 GB, uptime 5000 -> 60 s
    c.tick()
    assert used(c) == 0 and c.ledger.data["totals"]["upnp:192.0.2.1"] == [100_000_000, 0]
    assert "router_restart" in reasons(c) and "wrap32" not in reasons(c)  # not a 1.39 GB wrap


def test_the_first_router_reading_after_a_restart_is_judged_over_the_time_since_the_checkpoint(tmp_path, monkeypatch):
    m = Machine()
    gw = Gateway(monkeypatch, m)
    spec = [{"type": "upnp", "url": "http://192.0.2.1:5555/rootDesc.xml"}]
    a = m.collector(tmp_path, sources=spec)
    a.start()
    gw.made[-1].poll(3_000_000_000, 0, False, None, 12.5e6)  # a 100 Mbit/s WAN, no uptime (many routers)
    a.tick()
    a.flush(m.t, m.wall)
    m.advance(60)
    b = m.collector(tmp_path, sources=spec)
    b.start()
    gw.made[-1].poll(100_000_000, 0, False, None, 12.5e6)  # 3.0 -> 0.1 GB: a 1.39 GB wrap does not fit 65 s
    b.tick()
    assert "reset" in reasons(b) and "wrap32" not in reasons(b)
    assert b.ledger.data["totals"]["upnp:192.0.2.1"] == [100_000_000, 0]


# -- 4.-6. plans: rollover only from what was watched; an expired bucket ---------------------------------

ROLL = {"data_cap_gb": 100, "plan": {"kind": "monthly", "rollover_max_gb": 50}}


def test_rollover_on_install_day_adds_nothing():
    cfg = config.validate(ROLL)
    now = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
    s = cycle_summary({"days": {}, "monitoring_since": now.isoformat()}, None, cfg, now)
    assert s["cap_bytes"] == 100 * GB and s["rollover_known"] is False  # was 150 GB


def test_rollover_after_a_partly_watched_month_adds_nothing_until_the_isp_says():
    cfg = config.validate(ROLL)
    now = datetime(2026, 12, 3, tzinfo=TZ)
    doc = {"days": {"2026-11-25": {"eth0": [30 * GB, 0]}}, "monitoring_since": "2026-11-20T12:00:00+01:00"}
    assert cycle_summary(doc, None, cfg, now)["cap_bytes"] == 100 * GB  # was 150: 70 "unused" GB never watched
    isp = {"items": [{"id": "a", "cycle_start": "2026-11-01", "counted_bytes": 30 * GB, "offset_bytes": 50 * GB,
                      "undone": False, "at": "2026-11-30T20:00:00+01:00"}]}  # the ISP's meter said 80 GB
    assert cycle_summary(doc, isp, cfg, now)["cap_bytes"] == 120 * GB


def test_rollover_after_a_whole_watched_month_comes_from_the_count():
    cfg = config.validate(ROLL)
    doc = {"days": {"2026-11-25": {"eth0": [70 * GB, 0]}}, "monitoring_since": "2026-10-20T12:00:00+02:00"}
    s = cycle_summary(doc, None, cfg, datetime(2026, 12, 3, tzinfo=TZ))
    assert s["cap_bytes"] == 130 * GB and s["rollover_bytes"] == 30 * GB


def test_an_isp_reading_for_the_previous_period_through_the_api(tmp_path):
    client = create_app({**ROLL, "sources": [{"type": "local"}]}, tmp_path, tmp_path / "c.json").test_client()
    r = client.post("/api/usage/adjust", json={"used_gb": 60, "period": "previous"})
    assert r.status_code == 201 and r.get_json()["isp_bytes"] == 60 * GB
    assert client.get("/api/usage").get_json()["cycle"]["cap_bytes"] == 140 * GB
    assert client.post("/api/usage/adjust", json={"used_gb": 1, "period": "last"}).status_code == 400


PREPAID = {"plan": {"kind": "prepaid", "gb": 150, "start": "2026-11-09", "expires": "2026-12-09"}}


def test_an_expired_prepaid_bucket_counts_what_was_used_after_it_and_is_reached():
    cfg = config.validate(PREPAID)
    doc = {"days": {"2026-11-20": {"eth0": [30 * GB, 0]}, "2026-12-09": {"eth0": [30 * GB, 0]}},
           "monitoring_since": "2026-11-09T00:00:00+01:00"}
    s = cycle_summary(doc, None, cfg, datetime(2026, 12, 10, 12, tzinfo=TZ))
    assert s["expired"] and s["cap_reached"] and s["percent"] == 100.0  # was "20 % used"
    assert s["used_bytes"] == 60 * GB and s["after_expiry_bytes"] == 30 * GB and s["daily_budget_bytes"] == 0


def test_stop_at_cap_and_the_alerts_treat_an_expired_bucket_as_reached(tmp_path):
    m = Machine(start=datetime(2026, 12, 10, 12, 0, tzinfo=TZ))
    c = m.collector(tmp_path, **PREPAID)
    c.start()
    m.advance(1, rx=1000)
    c.tick()
    assert [a["percent"] for a in line(c)["alerts"]] == [100] and line(c)["alerts"][0]["expired"]


def test_a_prepaid_plan_refuses_rollover_with_the_reason():
    with pytest.raises(config.ConfigError) as exc:
        config.validate({"plan": {**PREPAID["plan"], "rollover_max_gb": 20}})
    assert "rollover_max_gb: a prepaid bucket has no period before it" in exc.value.errors["plan"]


# -- 7. one cap figure ---------------------------------------------------------------------------------

def test_cap_gb_in_the_usage_api_is_the_cap_the_plan_gives(tmp_path):
    client = create_app({**PREPAID, "data_cap_gb": 10}, tmp_path, tmp_path / "c.json").test_client()
    u = client.get("/api/usage").get_json()
    assert u["cap_gb"] * GB == u["cap_bytes"] == 150 * GB


def test_a_plan_is_built_once_per_config_and_answers_for_its_periods():
    p = plan.build(config.validate({"plan": {"kind": "rolling", "period_days": 30, "start": "2026-01-15"}}))
    assert p.period(date(2026, 3, 1)) == (date(2026, 2, 14), date(2026, 3, 16)) and p.previous(date(2026, 2, 14)) == date(2026, 1, 15)


def test_a_routers_unchanged_readings_move_the_count_on_so_stop_at_cap_adds_only_what_came_after(tmp_path, monkeypatch):
    """An idle line: the router answers with the same counters. The figure holds every byte up to the latest
    reading (less the router's caching), not only up to when the value first appeared."""
    m = Machine()
    gw = Gateway(monkeypatch, m)
    c = m.collector(tmp_path, sources=[{"type": "upnp", "url": "http://192.0.2.1:5555/rootDesc.xml"}])
    c.start()
    gw.traffic(1_000_000)
    gw.answer()
    c.tick()
    first = c.count_as_of(m.wall)
    for _ in range(6):
        gw.traffic(0)  # 5 s, nothing moved
        gw.answer()
        c.tick()
    assert c.count_as_of(m.wall) == pytest.approx(first + 30, abs=0.01)
    c.reload(config.validate({**c.cfg, "update_interval_seconds": 2}))
    assert c.count_as_of(m.wall) == pytest.approx(first + 30, abs=0.01)  # a settings save keeps what it knew
