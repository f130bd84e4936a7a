"""Numbers a user can bet the bill on: scenario tests on injected counters and clocks (issue: accounting)."""
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from datacap import config
from datacap import store
from datacap.measure import session_file
from datacap.measure.cap_guard import CapGuard
from datacap.usage import counters
from datacap.usage import ledger_file as ledgermod
from datacap.web import create_app
from test_collector import TZ, Machine, cycle_summary, flushed, line, reasons, used


# -- counter width ---------------------------------------------------------------------------------

def test_ppp_reset_on_a_32bit_python_with_a_64bit_kernel_credits_only_the_new_bytes(tmp_path):
    m = Machine()
    m.speed = None  # ppp0 / wwan0: the kernel reports no link speed
    m.counters["eth0"] = (1_000_000_000, 0)
    c = m.collector(tmp_path)
    c.start()
    m.counters["eth0"] = (1_000_000, 0)  # the modem reconnected: a fresh interface
    m.advance(1)
    c.tick()
    assert used(c) == 1_000_000 and reasons(c) == ["reset"]  # not +3,295,967,296 B


def test_a_counter_once_above_4_gib_is_64_bit_and_never_wraps_at_32(tmp_path):
    m = Machine()
    m.counters["eth0"] = (5_000_000_000, 0)
    c = m.collector(tmp_path)
    c.start()
    m.advance(1, rx=10)
    c.tick()
    m.counters["eth0"] = (1000, 0)  # below 2**32 again: a 32-bit wrap would fit the link, but it is 64-bit
    m.advance(1)
    c.tick()
    assert reasons(c) == ["reset"] and used(c) == 10 + 1000


def test_a_real_32_bit_wrap_that_fits_the_link_is_counted_across_it(tmp_path):
    m = Machine()
    m.counters["eth0"] = (2 ** 32 - 5_000_000, 0)  # a 32-bit kernel's counter near its top
    c = m.collector(tmp_path)
    c.start()
    m.counters["eth0"] = (20_000_000, 0)
    m.advance(1)
    c.tick()
    assert used(c) == 25_000_000 and reasons(c) == ["wrap32"]


def test_a_wrap_too_big_for_an_unknown_link_in_the_time_is_a_reset():
    assert counters.delta(1_000_000_000, 1_000_000, False, 1.0, None) == (1_000_000, "reset")
    assert counters.delta(2 ** 32 - 100, 50, False, 1.0, None) == (150, "wrap32")


# -- reboots and NTP -------------------------------------------------------------------------------

def test_ntp_step_after_a_collector_restart_credits_only_the_real_10_mb(tmp_path):
    m = Machine()
    m.counters["eth0"] = (51_000_000_000, 0)  # 51 GB since boot, long before datacap counted
    a = m.collector(tmp_path)
    a.start()
    m.advance(30, rx=4_000_000)
    a.tick()
    a.flush(m.t, m.wall)
    m.advance(5, rx=6_000_000)
    m.btime += 7200  # a Pi without RTC: NTP syncs and /proc/stat btime moves by hours; same boot_id
    b = m.collector(tmp_path)
    b.start()
    assert used(b) == 10_000_000 and "reboot" not in reasons(b)


def test_without_a_boot_id_btime_must_be_corroborated_by_a_counter_that_went_down(tmp_path):
    m = Machine()
    m.boot_id = None  # no /proc/sys/kernel/random/boot_id
    a = m.collector(tmp_path)
    a.start()
    m.advance(1, rx=1000)
    a.tick()
    a.flush(m.t, m.wall)
    m.btime += 7200  # moved, but every counter still grew: the clock was stepped, not rebooted
    m.advance(1, rx=500)
    b = m.collector(tmp_path)
    b.start()
    assert used(b) == 1500 and "reboot" not in reasons(b)
    b.flush(m.t, m.wall)
    m.btime += 60
    m.counters["eth0"] = (300, 0)  # moved and a counter went down: a reboot
    c = m.collector(tmp_path)
    c.start()
    assert used(c) == 1800 and "reboot" in reasons(c)


# -- one owner of "cycle used" ---------------------------------------------------------------------

def live_collector(tmp_path, m, **cfg):
    c = m.collector(tmp_path, **cfg)
    c.start()
    for _ in range(10):  # 10 s of traffic: in the live file at once, in the ledger only at the next flush
        m.advance(1, rx=100_000_000)
        c.tick()
    return c


def test_usage_api_and_stats_show_the_collectors_live_count_not_the_minute_old_ledger(tmp_path):
    m = Machine(start=datetime.now(TZ))
    live_collector(tmp_path, m, data_cap_gb=10)
    on_disk = json.loads((tmp_path / "usage.json").read_text())
    assert sum(on_disk["totals"].get("eth0", [0, 0])) == 0  # flushed before the traffic
    client = create_app({"data_cap_gb": 10}, tmp_path, tmp_path / "c.json").test_client()
    cycle = client.get("/api/usage").get_json()["cycle"]
    assert cycle["used_bytes"] == 1_000_000_000 and cycle["live"] is True
    assert client.get("/api/stats").get_json()["cap_percentage"] == 10.0
    assert client.get("/metrics").get_data(as_text=True).count("datacap_cycle_used_bytes 1e+09") == 1


def test_stop_at_cap_sees_the_live_count_plus_the_sessions_newest_bytes(tmp_path):
    m = Machine(start=datetime.now(TZ))
    c = live_collector(tmp_path, m, data_cap_gb=1.2)
    cfg = config.validate({"data_cap_gb": 1.2})
    guard = CapGuard(tmp_path, now=lambda: m.wall)
    at = datetime.fromisoformat(json.loads(c.live_path.read_text())["updated_at"]).timestamp()
    assert guard.reached(cfg, 0, at, 0.0) is False  # 1.0 of 1.2 GB
    assert guard.reached(cfg, 150_000_000, at + 1, 1.0) is False  # 1.15 GB: not yet
    assert guard.reached(cfg, 250_000_000, at + 2, 2.0) is True  # the collector has not sampled these yet


def test_adjustment_uses_the_live_count(tmp_path):
    m = Machine(start=datetime.now(TZ))
    live_collector(tmp_path, m)
    client = create_app({}, tmp_path, tmp_path / "c.json").test_client()
    item = client.post("/api/usage/adjust", json={"used_gb": 1.5}).get_json()
    assert item["counted_bytes"] == 1_000_000_000 and item["offset_bytes"] == 500_000_000


# -- projection ------------------------------------------------------------------------------------

def test_projection_extrapolates_from_when_monitoring_began_not_the_cycles_first_day():
    cfg = config.validate({"data_cap_gb": 1000, "billing_day": 1})
    installed = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)
    now = installed + timedelta(minutes=20)
    source = {"days": {"2026-11-24": {"eth0": [70_000_000, 0]}}, "monitoring_since": installed.isoformat()}
    s = cycle_summary(source, None, cfg, now)
    left = (datetime(2026, 12, 1, tzinfo=TZ) - now).total_seconds()
    assert s["monitoring_since"] == installed.isoformat()
    assert s["projected_bytes"] == pytest.approx(70e6 + 70e6 / 1200 * left, rel=1e-6)  # ~33 GB, not 0.09 GB
    assert s["projected_bytes"] > 30e9


def test_projection_after_an_isp_reading_uses_the_pace_since_the_reading():
    cfg = config.validate({"data_cap_gb": 100, "billing_day": 1})
    read_at = datetime(2026, 11, 10, 0, 0, tzinfo=TZ)
    now = read_at + timedelta(days=1)
    source = {"days": {"2026-11-05": {"eth0": [4 * 10**9, 0]}, "2026-11-10": {"eth0": [10**9, 0]}},
              "monitoring_since": "2026-11-01T00:00:00+01:00"}
    adj = {"items": [{"id": "a", "at": read_at.isoformat(), "cycle_start": "2026-11-01", "isp_bytes": 20 * 10**9,
                      "counted_bytes": 4 * 10**9, "offset_bytes": 16 * 10**9, "undone": False}]}
    s = cycle_summary(source, adj, cfg, now)
    assert s["used_bytes"] == 21 * 10**9
    left = (datetime(2026, 12, 1, tzinfo=TZ) - now).total_seconds()
    assert s["projected_bytes"] == pytest.approx(21e9 + 1e9 / 86400 * left, rel=1e-6)


# -- alerts ----------------------------------------------------------------------------------------

def test_crossing_several_thresholds_at_once_sends_one_alert_naming_the_highest(tmp_path):
    m = Machine()
    c = m.collector(tmp_path, data_cap_gb=10, alert_thresholds_percent=[50, 75, 90])
    c.start()
    m.advance(60, rx=9_500_000_000)
    c.tick()
    alerts = line(c)["alerts"]
    assert [(a["percent"], a["covers"]) for a in alerts] == [(90, [50, 75, 90])]


def test_thresholds_rearm_when_a_raised_cap_puts_usage_below_them(tmp_path):
    m = Machine()
    c = m.collector(tmp_path, data_cap_gb=10, alert_thresholds_percent=[50, 90])
    c.start()
    m.advance(60, rx=6_000_000_000)
    c.tick()
    assert [a["percent"] for a in line(c)["alerts"]] == [50]
    c.reload(config.validate({"interfaces": ["eth0"], "data_cap_gb": 20, "alert_thresholds_percent": [50, 90]}))
    m.advance(60)
    c.tick()  # 30 % of the new cap: 50 % is armed again
    m.advance(60, rx=5_000_000_000)
    c.tick()  # 55 %
    assert [a["percent"] for a in line(c)["alerts"]] == [50, 50]
    assert len({a["id"] for a in line(c)["alerts"]}) == 2


def test_no_alert_thresholds_still_counts_live(tmp_path):
    m = Machine(start=datetime.now(TZ))
    c = live_collector(tmp_path, m, alert_thresholds_percent=[])
    assert json.loads(c.live_path.read_text())["cycle_used_bytes"] == 1_000_000_000


# -- limits ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("data_cap_gb", 1e300), ("data_cap_gb", 1e-10), ("session_limit_gb", 1e-10),
                                        ("session_limit_gb", 1e300)])
def test_limits_the_validator_cannot_be_talked_out_of(key, value):
    with pytest.raises(config.ConfigError) as exc:
        config.validate({key: value})
    assert key in exc.value.errors and "0.001" in exc.value.errors[key]


@pytest.mark.parametrize("cap", [0.001, 1_000_000])
def test_every_usage_view_works_at_the_edges_of_the_cap_range(tmp_path, cap):
    m = Machine(start=datetime.now(TZ))
    live_collector(tmp_path, m, data_cap_gb=cap)
    client = create_app({"data_cap_gb": cap}, tmp_path, tmp_path / "c.json").test_client()
    for path in ("/api/usage", "/api/stats", "/metrics", "/api/export?what=daily"):
        assert client.get(path).status_code == 200, path


# -- damaged files ---------------------------------------------------------------------------------

def test_a_ledger_that_parses_but_lacks_its_counters_is_set_aside_and_the_backup_restored(tmp_path):
    m = Machine()
    flushed(m, tmp_path, 1234)
    assert json.loads((tmp_path / "usage.json.bak").read_text())["totals"]["eth0"] == [1234, 0]
    damaged = json.loads((tmp_path / "usage.json").read_text())
    del damaged["checkpoint"]["counters"]
    (tmp_path / "usage.json").write_text(json.dumps(damaged))
    b = m.collector(tmp_path)
    assert used(b) == 1234 and list(tmp_path.glob("usage.json.corrupt-*"))


def test_a_transient_read_error_is_retried_not_taken_for_damage(tmp_path, monkeypatch):
    m = Machine()
    flushed(m, tmp_path, 777)
    real_open, fails = open, [2]

    def flaky(path, *args, **kw):
        if str(path).endswith("usage.json") and fails[0]:
            fails[0] -= 1
            raise OSError(5, "Input/output error")
        return real_open(path, *args, **kw)
    monkeypatch.setattr(ledgermod, "open", flaky, raising=False)
    monkeypatch.setattr(ledgermod.time, "sleep", lambda s: None)
    b = m.collector(tmp_path)
    assert used(b) == 777 and not list(tmp_path.glob("usage.json.corrupt-*"))


def test_a_read_error_that_persists_stops_the_collector_and_damages_nothing(tmp_path, monkeypatch):
    (tmp_path / "usage.json").write_text(json.dumps(ledgermod.empty()))
    monkeypatch.setattr(ledgermod, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")),
                        raising=False)
    monkeypatch.setattr(ledgermod.time, "sleep", lambda s: None)
    with pytest.raises(OSError):
        Machine().collector(tmp_path)
    assert (tmp_path / "usage.json").exists() and not list(tmp_path.glob("usage.json.corrupt-*"))


def test_a_downloader_file_with_wrong_types_never_500s_nor_poisons_the_next_session(tmp_path):
    store.write_json_atomic(tmp_path / session_file.NAME, {
        "status": "finished", "url_errors": "abc", "throttle_events": {"x": 1}, "data_points": [1, "a", None],
        "total_bytes": "lots", "speed_mbps": None, "history": 5})
    client = create_app({}, tmp_path, tmp_path / "c.json").test_client()
    for path in ("/api/stats", "/api/stats?since=3", "/metrics", "/api/export", "/api/export?what=events"):
        assert client.get(path).status_code == 200, path
    s = client.get("/api/stats").get_json()
    assert s["url_errors"] == [] and s["throttle_events"] == [] and s["total_bytes"] == 0
    assert session_file.normalize(store.read_json(tmp_path / session_file.NAME))["url_errors"] == []


# -- DST -------------------------------------------------------------------------------------------

def test_resets_at_and_cap_date_carry_the_offset_valid_at_that_instant():
    cfg = config.validate({"data_cap_gb": 100, "billing_day": 1})
    now = datetime(2026, 10, 15, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # CEST, +02:00
    s = cycle_summary({"days": {"2026-10-10": {"eth0": [70 * 10**9, 0]}}}, None, cfg, now)
    assert s["resets_at"] == "2026-11-01T00:00:00+01:00"  # CET by then
    assert s["cap_date"].startswith("2026-10-21") and s["cap_date"].endswith("+02:00")
    s = cycle_summary({"days": {"2026-10-10": {"eth0": [55 * 10**9, 0]}}}, None, cfg, now)
    assert s["cap_date"].startswith("2026-10-27") and s["cap_date"].endswith("+01:00")  # after Oct 25
