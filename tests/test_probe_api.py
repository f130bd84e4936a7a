"""GET /api/probes and the probe gauges in /metrics, over a probes.json written by its own writer."""
from datetime import datetime, timedelta, timezone

from datacap.measure.probe import file as probe_file
from datacap.usage.current import CycleReader
from datacap.web import create_app


def write_probes(data_dir, cfg, speeds):
    start = CycleReader(data_dir).summary(cfg, datetime.now().astimezone())["start"]
    t0 = datetime.now(timezone.utc) - timedelta(hours=len(speeds))
    for i, mbps in enumerate(speeds):
        probe_file.add(data_dir, {"id": f"p{i}", "time": (t0 + timedelta(hours=i)).isoformat(), "cycle_start": start,
                                  "cycle_used_bytes": i * 10 ** 9, "mbps": mbps, "bytes": 2 * 10 ** 6, "quiet": True,
                                  "stopped_by": "settled", "settled": True, "ttfb_ms": 12.0}, 50)
    probe_file.add(data_dir, {"id": "old", "time": "2020-01-02T00:00:00+00:00", "cycle_start": "2020-01-01",
                              "cycle_used_bytes": 0, "mbps": 50, "bytes": 10 ** 6, "quiet": True}, 50)
    return start


def test_api_probes_shows_this_cycles_probes_budget_and_the_open_finding(tmp_path):
    cfg = {"data_cap_gb": 10, "probe_budget_percent": 2}
    app = create_app(cfg, data_dir=tmp_path)
    start = write_probes(tmp_path, app.extensions["datacap"].cfg, [90, 91, 90, 3, 3])
    every = app.test_client().get("/api/probes").get_json()
    assert [p["id"] for p in every["probes"]] == ["old", "p0", "p1", "p2", "p3", "p4"]
    body = app.test_client().get("/api/probes?cycle=this").get_json()
    assert [p["id"] for p in body["probes"]] == ["p0", "p1", "p2", "p3", "p4"]
    assert body["budget"] == {"budget_bytes": 2 * 10 ** 8, "spent_bytes": 10 ** 7, "left_bytes": 19 * 10 ** 7,
                              "used_percent": 5.0}
    assert body["throttled"] and body["finding"]["id"] == f"{start}:p3"
    assert body["finding"]["since_cycle_gb"] == 2.502
    assert body["cycles"] == ["2020-01-01", start]
    old = app.test_client().get("/api/probes?cycle=2020-01-01").get_json()
    assert [p["id"] for p in old["probes"]] == ["old"] and old["finding"]["id"] == body["finding"]["id"]


def test_metrics_carry_the_probe_gauges(tmp_path):
    app = create_app({"data_cap_gb": 10}, data_dir=tmp_path)
    write_probes(tmp_path, app.extensions["datacap"].cfg, [90, 91, 90, 3, 3])
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "datacap_probe_speed_bytes_per_second 375000.0" in text
    assert "datacap_probe_throttle_active 1.0" in text
    assert "datacap_probe_budget_used_bytes 1e+07" in text
    assert "datacap_probe_throttle_since_cycle_bytes 2.502e+09" in text


def test_api_probes_with_no_file_yet_is_empty_not_an_error(tmp_path):
    body = create_app({}, data_dir=tmp_path).test_client().get("/api/probes").get_json()
    assert body["probes"] == [] and body["finding"] is None and not body["throttled"]
    assert body["budget"]["spent_bytes"] == 0 and body["interval_minutes"] == 60


def test_the_finding_and_its_lift_are_news_once_each_by_stable_id(tmp_path):
    from datacap.notify import events
    app = create_app({"data_cap_gb": 10}, data_dir=tmp_path)
    v = app.extensions["datacap"]
    start = write_probes(tmp_path, v.cfg, [90, 91, 90, 3, 3])
    found = [n for n in events.news(v, site="pi") if n.key.startswith("probe-")]
    assert [(n.key, n.kind) for n in found] == [(f"probe-throttle:{start}:p3", "throttle_start")]
    assert found[0].text.startswith("datacap at pi: Since ~2.50 GB into this cycle")
    t = datetime.now(timezone.utc)
    for i in (5, 6):
        probe_file.add(tmp_path, {"id": f"p{i}", "time": t.isoformat(), "cycle_start": start, "mbps": 89,
                                  "cycle_used_bytes": i * 10 ** 9, "bytes": 10 ** 6, "quiet": True,
                                  "stopped_by": "settled", "settled": True}, 50)
    keys = [n.key for n in events.news(v, site="pi") if n.key.startswith("probe-")]
    assert keys == [f"probe-throttle:{start}:p3", f"probe-lift:{start}:p3:lift"]
