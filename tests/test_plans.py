"""Plans as ISPs sell them: free windows, rolling periods, prepaid buckets, rollover (injected clocks)."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from datacap import config
from datacap.usage import free_windows, plan
from datacap.web import create_app
from test_collector import TZ, Machine, cycle_summary, line

NIGHT = {"kind": "monthly", "free_windows": [{"start": "23:00", "end": "07:00"}]}


def counted(c):
    return sum(v[0] + v[1] for day in line(c)["days"].values() for v in day.values())


def free(c):
    return sum(v[0] + v[1] for day in line(c)["free"].values() for v in day.values())


def test_a_window_crossing_midnight_makes_its_bytes_free_and_no_others(tmp_path):
    m = Machine(start=datetime(2026, 11, 10, 21, 0, tzinfo=TZ))
    c = m.collector(tmp_path, plan=NIGHT)
    c.start()
    for _ in range(24):  # one hour at a time, 1 MB each, from 21:00 to 21:00 the next day
        m.advance(3600, rx=1_000_000)
        c.tick()
    assert free(c) == 8_000_000 and counted(c) == 16_000_000  # 23:00-07:00 free, across midnight
    s = c.summary(m.wall)
    assert s["free_bytes"] == 8_000_000 and s["used_bytes"] == 16_000_000


def test_a_window_boundary_inside_a_collector_interval_splits_its_bytes_by_time(tmp_path):
    m = Machine(start=datetime(2026, 11, 10, 22, 59, 30, tzinfo=TZ))
    c = m.collector(tmp_path, plan=NIGHT)
    c.start()
    m.advance(60, rx=1000)  # 22:59:30 -> 23:00:30: half before the window, half inside
    c.tick()
    assert free(c) == 500 and counted(c) == 500


def test_a_dst_change_inside_a_window_counts_real_hours():
    berlin = ZoneInfo("Europe/Berlin")
    windows = [{"start": "01:00", "end": "04:00"}]
    a = datetime(2026, 10, 25, 0, 0, tzinfo=berlin).timestamp()  # clocks go back at 03:00 CEST
    b = datetime(2026, 10, 25, 5, 0, tzinfo=berlin).timestamp()  # 6 real hours, 4 of them in the window
    assert b - a == 6 * 3600
    assert free_windows.free_share(windows, a, b, berlin) == pytest.approx(4 / 6)


@pytest.mark.parametrize("today, start, end", [
    (date(2026, 1, 20), "2026-01-15", "2026-02-13"),
    (date(2026, 3, 1), "2026-02-14", "2026-03-15"),
    (date(2026, 3, 16), "2026-03-16", "2026-04-14"),
    (date(2027, 1, 3), "2026-12-11", "2027-01-09"),
])
def test_rolling_30_day_periods_run_across_month_ends(today, start, end):
    cfg = config.validate({"plan": {"kind": "rolling", "period_days": 30, "start": "2026-01-15"}})
    s = cycle_summary({"days": {}}, None, cfg, datetime.combine(today, datetime.min.time(), TZ))
    assert (s["start"], s["end"]) == (start, end)


def test_prepaid_bucket_with_top_ups_and_expiry(tmp_path):
    cfg = {"plan": {"kind": "prepaid", "gb": 50, "start": "2026-11-09", "expires": "2026-12-09"}}
    now = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
    source = {"days": {"2026-11-15": {"eth0": [45 * 10**9, 0]}, "2026-11-01": {"eth0": [99 * 10**9, 0]}}}
    s = cycle_summary(source, None, config.validate(cfg), now)
    assert s["start"] == "2026-11-09" and s["used_bytes"] == 45 * 10**9 and s["percent"] == 90.0  # Nov 1 is before
    topups = {"items": [{"id": "a", "bucket_start": "2026-11-09", "gb": 10, "expires": "2026-12-20", "undone": False},
                        {"id": "b", "bucket_start": "2026-11-09", "gb": 5, "expires": None, "undone": True}]}
    s = cycle_summary(source, None, config.validate(cfg), now, topups)
    assert s["cap_bytes"] == 60 * 10**9 and s["end"] == "2026-12-19" and not s["expired"]
    assert s["plan"]["words"] == "Prepaid 50 GB, expires Dec 20; 1 top-up"
    late = cycle_summary(source, None, config.validate(cfg), datetime(2026, 12, 21, tzinfo=TZ), topups)
    assert late["expired"] and late["days_left"] == 0


def test_top_up_through_the_api_and_undo(tmp_path):
    cfg = {"plan": {"kind": "prepaid", "gb": 50, "start": "2026-11-09", "expires": "2026-12-09"}}
    client = create_app(cfg, tmp_path, tmp_path / "c.json").test_client()
    item = client.post("/api/usage/topup", json={"gb": 10}).get_json()
    assert client.get("/api/usage").get_json()["cycle"]["cap_bytes"] == 60 * 10**9
    assert client.delete(f"/api/usage/topup/{item['id']}").status_code == 200
    assert client.get("/api/usage").get_json()["cycle"]["cap_bytes"] == 50 * 10**9
    assert client.post("/api/usage/topup", json={"gb": 0}).status_code == 400
    monthly = create_app({}, tmp_path / "m", tmp_path / "c.json").test_client()
    assert "prepaid" in monthly.post("/api/usage/topup", json={"gb": 1}).get_json()["error"]


@pytest.mark.parametrize("previous_gb, cap_gb", [(50, 120), (95, 105), (130, 100)])
def test_rollover_carries_unused_data_over_capped_at_its_maximum(previous_gb, cap_gb):
    cfg = config.validate({"data_cap_gb": 100, "plan": {"kind": "monthly", "rollover_max_gb": 20}})
    source = {"days": {"2026-10-12": {"eth0": [previous_gb * 10**9, 0]}}}
    s = cycle_summary(source, None, cfg, datetime(2026, 11, 5, tzinfo=TZ))
    assert s["cap_bytes"] == cap_gb * 10**9


def test_a_plan_change_mid_cycle_applies_from_then_on(tmp_path):
    m = Machine(start=datetime(2026, 11, 10, 12, 0, tzinfo=TZ))
    c = m.collector(tmp_path)
    c.start()
    m.advance(60, rx=1_000_000)
    c.tick()
    now = m.wall
    window = {"start": f"{(now - timedelta(hours=1)):%H:%M}", "end": f"{(now + timedelta(hours=1)):%H:%M}"}
    c.reload(config.validate({"interfaces": ["eth0"], "sources": [{"type": "local"}],
                              "plan": {"kind": "monthly", "free_windows": [window]}}))
    m.advance(60, rx=2_000_000)
    c.tick()
    assert counted(c) == 1_000_000 and free(c) == 2_000_000  # what was counted stays counted


@pytest.mark.parametrize("plan, says", [
    ({"kind": "monthly", "free_windows": [{"start": "23:00", "end": "07:00"}, {"start": "06:00", "end": "08:00"}]},
     "free_windows[2]: overlaps window 1"),
    ({"kind": "monthly", "free_windows": [{"start": "25:00", "end": "07:00"}]}, "free_windows[1].start"),
    ({"kind": "prepaid", "gb": 5, "start": "2026-11-09", "expires": "2026-11-01"}, "expires: must be after start"),
    ({"kind": "rolling", "start": "2026-11-09"}, "period_days"),
    ({"kind": "weekly"}, "kind"),
    ({"kind": "monthly", "free_windows": [{"start": "01:00", "end": "02:00", "weekdays": ["fri", "sonday"]}]},
     "weekdays"),
])
def test_bad_plan_settings_get_one_line_naming_the_key(plan, says):
    with pytest.raises(config.ConfigError) as exc:
        config.validate({"plan": plan})
    assert says in exc.value.errors["plan"]


def test_an_expired_prepaid_plan_is_a_warning_not_an_error(tmp_path):
    cfg = config.validate({"plan": {"kind": "prepaid", "gb": 5, "start": "2020-01-01", "expires": "2020-02-01"}})
    assert "expired on 2020-02-01" in plan.build(cfg).warnings(date(2026, 11, 24))[0]
    client = create_app(cfg, tmp_path, tmp_path / "c.json").test_client()
    assert client.get("/api/usage").get_json()["plan_warnings"]
