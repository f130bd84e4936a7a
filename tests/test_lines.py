"""Several connections, each with its own bill (issue: lines): fake clocks and counters, the real app."""
from datetime import datetime

import pytest

from datacap import config
from datacap.usage import lines
from datacap.web import create_app
from test_collector import TZ, Machine

GB = 10 ** 9
THREE = [
    {"name": "Starlink", "source": {"type": "local", "interfaces": ["eth0"]}, "data_cap_gb": 100, "billing_day": 3,
     "alert_thresholds_percent": [50, 90]},
    {"name": "Cellular", "source": {"type": "local", "interfaces": ["wwan0"]}, "data_cap_gb": 10, "billing_day": 12,
     "alert_thresholds_percent": [50, 90]},
    {"name": "Hotspot SIM", "source": {"type": "local", "interfaces": ["usb0"]},
     "plan": {"kind": "prepaid", "gb": 5, "start": "2026-11-20", "expires": "2026-12-20"},
     "alert_thresholds_percent": [90]},
]


class Multi(Machine):
    def __init__(self, start):
        super().__init__(start)
        self.counters.update({"wwan0": (0, 0), "usb0": (0, 0)})


def multi(tmp_path, start=datetime(2026, 12, 1, 12, 0, tzinfo=TZ)):
    m = Multi(start)
    c = m.collector(tmp_path, lines=THREE, interfaces="auto", sources="auto")
    c.start()
    return m, c


def used(c, line):
    return c.summary(c.now(), lines.by_name(c.cfg, line))


def test_each_line_counts_its_own_interfaces(tmp_path):
    m, c = multi(tmp_path)
    m.advance(100, rx=3 * GB, name="eth0")  # within the links' speed: more would be discarded as implausible
    m.advance(0, rx=2 * GB, name="wwan0")
    m.advance(0, rx=1 * GB, name="usb0")
    c.tick()
    assert [used(c, x)["used_bytes"] for x in ("Starlink", "Cellular", "Hotspot SIM")] == [3 * GB, 2 * GB, 1 * GB]


def test_each_line_rolls_over_on_its_own_day(tmp_path):
    m, c = multi(tmp_path)
    for day in range(1, 24):  # Dec 1 to Dec 23, 0.1 GB a day on each line
        for name in ("eth0", "wwan0", "usb0"):
            m.advance(0, rx=GB // 10, name=name)
        m.advance(86400)
        c.tick()
        starts = {x: used(c, x)["start"] for x in ("Starlink", "Cellular", "Hotspot SIM")}
        if day == 2:
            assert starts == {"Starlink": "2026-12-03", "Cellular": "2026-11-12", "Hotspot SIM": "2026-11-20"}
        if day == 11:
            assert starts == {"Starlink": "2026-12-03", "Cellular": "2026-12-12", "Hotspot SIM": "2026-11-20"}
    assert used(c, "Hotspot SIM")["expired"] and not used(c, "Starlink")["expired"]
    assert used(c, "Starlink")["used_bytes"] == 22 * GB // 10  # credited Dec 3 to Dec 24, one tick a day at noon


def test_alerts_fire_once_per_line_and_threshold_with_the_lines_name(tmp_path):
    m, c = multi(tmp_path)
    for _ in range(3):  # the same crossings, seen again every tick
        m.advance(100, rx=int(9.5 * GB), name="wwan0")  # Cellular: 95 % of 10 GB at the first tick
        m.advance(0, rx=int(0.1 * GB), name="eth0")
        c.tick()
    fired = {name: [a["percent"] for a in c.ledger.line(name)["alerts"]] for name in ("Starlink", "Cellular")}
    assert fired == {"Starlink": [], "Cellular": [90]}  # 50 and 90 crossed at once: one alert naming 90
    m.advance(400, rx=60 * GB, name="eth0")
    c.tick()
    c.tick()
    assert [a["percent"] for a in c.ledger.line("Starlink")["alerts"]] == [50]
    assert c.ledger.line("Starlink")["alerts"][0]["line"] == "Starlink"


def test_a_line_shared_counter_missing_source_or_repeated_name_is_refused_naming_it(tmp_path):
    two = [{"name": "A", "source": {"type": "snmp", "host": "192.0.2.1", "community": "c", "interface": "wan1"}},
           {"name": "B", "source": {"type": "snmp", "host": "192.0.2.1", "community": "c", "interface": "wan1"}}]
    for bad, says in ((two, "lines[2] (B): source: 192.0.2.1:161 interface wan1 is already the counter of line 'A'"),
                      ([{"name": "A"}], "lines[1] (A): source: every line needs its counter (local interfaces, "
                                        "an SNMP interface or a UPnP gateway)"),
                      ([two[0], {**two[1], "name": "a", "source": {"type": "local"}}],
                       "lines[2] (a): name: lines[1] has that name too")):
        with pytest.raises(config.ConfigError) as exc:
            config.validate({"lines": bad})
        assert exc.value.errors["lines"] == says
    client = create_app({}, tmp_path, tmp_path / "c.json").test_client()
    r = client.put("/api/config", json={"lines": two})
    assert r.status_code == 400 and "already the counter of line 'A'" in r.get_json()["fields"]["lines"]
    assert not (tmp_path / "c.json").exists()  # nothing written


def test_usage_api_lists_every_line_and_keeps_the_first_at_the_top(tmp_path):
    m, c = multi(tmp_path, start=datetime.now(TZ))
    m.advance(100, rx=2 * GB, name="wwan0")
    c.tick()
    cfg = {"lines": THREE, "sources": "auto"}
    client = create_app(cfg, tmp_path, tmp_path / "c.json").test_client()
    u = client.get("/api/usage").get_json()
    assert [b["name"] for b in u["lines"]] == ["Starlink", "Cellular", "Hotspot SIM"]
    cell = u["lines"][1]
    assert cell["cycle"]["used_bytes"] == 2 * GB and cell["cap_bytes"] == 10 * GB and u["cycle"]["cap_bytes"] == 100 * GB
    r = client.post("/api/usage/adjust", json={"used_gb": 3, "line": "Cellular"})
    assert r.status_code == 201
    after = client.get("/api/usage").get_json()
    assert after["lines"][1]["cycle"]["used_bytes"] == 3 * GB and after["cycle"]["used_bytes"] == 0
    assert "no line is called 'LTE'" in client.post("/api/usage/adjust", json={"used_gb": 3, "line": "LTE"}).get_json()["error"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'datacap_cycle_used_bytes{line="Cellular"} 3e+09' in metrics
    assert client.post("/api/usage/topup", json={"gb": 1, "line": "Hotspot SIM"}).status_code == 201
    assert "prepaid" in client.post("/api/usage/topup", json={"gb": 1}).get_json()["error"]


def vnstat_json(days, name="eth0", created=(2026, 10, 1)):
    y, mo, d = created
    return {"vnstatversion": "2.10", "jsonversion": "2", "interfaces": [
        {"name": name, "created": {"date": {"year": y, "month": mo, "day": d}},
         "traffic": {"day": [{"id": i, "date": {"year": int(k[:4]), "month": int(k[5:7]), "day": int(k[8:])},
                              "rx": rx, "tx": tx} for i, (k, (rx, tx)) in enumerate(sorted(days.items()))]}}]}


def test_vnstat_days_before_datacap_came_are_imported_and_the_first_day_is_completed(tmp_path):
    m = Machine(start=datetime(2026, 12, 5, 12, 0, tzinfo=TZ))  # datacap counts from Dec 5, noon
    c = m.collector(tmp_path)
    c.start()
    m.advance(100, rx=300)
    c.tick()
    client = create_app({"interfaces": ["eth0"], "sources": [{"type": "local"}]}, tmp_path, tmp_path / "c.json").test_client()
    days = {"2026-12-03": (1000, 10), "2026-12-04": (2000, 20), "2026-12-05": (5000, 50), "2026-12-06": (9, 9)}
    r = client.post("/api/usage/import", json=vnstat_json(days))
    assert r.status_code == 201 and r.get_json()["days"] == 4
    m.advance(1)
    c.tick()
    got = {d: v for d, v in c.ledger.line("Internet")["days"].items()}
    assert got["2026-12-03"] == {"vnstat:eth0": [1000, 10]} and got["2026-12-04"] == {"vnstat:eth0": [2000, 20]}
    assert got["2026-12-05"] == {"eth0": [300, 0], "vnstat:eth0": [4700, 50]}  # vnStat's whole day, datacap's part kept
    assert "2026-12-06" not in got  # datacap's own from then on
    assert c.ledger.line("Internet")["monitoring_since"].startswith("2026-10-01")  # vnStat watched since then
    again = client.post("/api/usage/import", json=vnstat_json({**days, "2026-12-04": (2500, 25)}))
    assert again.status_code == 201
    c.tick()
    assert c.ledger.line("Internet")["days"]["2026-12-04"] == {"vnstat:eth0": [2500, 25]}  # replaced, not added


@pytest.mark.parametrize("doc, says", [
    ({"hello": 1}, "not vnStat's JSON"),
    ({"vnstatversion": "1.18", "jsonversion": "1", "interfaces": []}, "only version 2"),
    ({**vnstat_json({"2026-12-01": (1, 1)}), "interfaces": [{"name": "eth0", "traffic": {"day": [{"date": {}}]}}]},
     "day 1 of 'eth0' is damaged"),
])
def test_foreign_or_damaged_vnstat_input_is_refused_with_the_reason_and_nothing_written(tmp_path, doc, says):
    client = create_app({}, tmp_path, tmp_path / "c.json").test_client()
    r = client.post("/api/usage/import", json=doc)
    assert r.status_code == 400 and says in r.get_json()["error"] and "nothing was imported" in r.get_json()["error"]
    assert not (tmp_path / "imports.json").exists()


def test_a_test_in_the_first_minutes_of_an_install_does_not_make_the_months_projection(tmp_path):
    from test_collector import cycle_summary
    cfg = config.validate({"data_cap_gb": 5})
    installed = datetime(2026, 12, 6, 10, 0, tzinfo=TZ)
    now = datetime(2026, 12, 6, 10, 20, tzinfo=TZ)
    doc = {"days": {"2026-12-06": {"eth0": [int(0.551 * GB), 0]}}, "monitoring_since": installed.isoformat()}
    test = [(datetime(2026, 12, 6, 10, 5, tzinfo=TZ).timestamp(), int(0.55 * GB))]  # a one-minute test
    before = cycle_summary(doc, None, cfg, now)
    after = cycle_summary(doc, None, cfg, now, own=test)
    assert before["projected_bytes"] > 1000 * GB  # 0.55 GB in 20 min, as if every 20 min of the month
    assert after["projected_bytes"] < 3 * GB and after["own_bytes"] == int(0.55 * GB)  # the household's 1 MB pace
    assert after["used_bytes"] == before["used_bytes"]  # counted in full, never subtracted from the cap figure
