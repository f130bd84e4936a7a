"""Passive throttle finding across probes, told against the cycle's usage; probes.json stays bounded."""
from datetime import datetime, timedelta, timezone

from datacap.measure.probe import budget, file as probe_file
from datacap.measure.probe import finding as probe_finding

T0 = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)


def probes(speeds, gb_step=10.0, probe_mb=20, quiet=True, start_gb=0.0):
    """One probe an hour, gb_step GB of other traffic between them."""
    out = []
    for i, mbps in enumerate(speeds):
        out.append({"id": f"p{i}", "time": (T0 + timedelta(hours=i)).isoformat(), "cycle_start": "2026-11-01",
                    "cycle_used_bytes": int((start_gb + i * gb_step) * 1e9), "mbps": mbps, "bytes": probe_mb * 10 ** 6,
                    "quiet": quiet, "stopped_by": "settled", "settled": True})
    return out


def test_a_lasting_step_down_is_reported_on_the_second_low_probe_with_its_cycle_mark():
    found = probe_finding.find(probes([95, 94, 96, 95, 1.5, 1.5]), 50)
    assert len(found) == 1
    f = found[0]
    assert f["id"] == "2026-11-01:p4" and f["confirmed_by"] == "p5" and f["lifted"] is None
    assert f["bracket_bytes"] == [30_020_000_000, 40_020_000_000]
    assert f["since_cycle_gb"] == 35.02
    assert f["before_mbps"] == 95 and f["during_mbps"] == 1.5
    assert f["text"].startswith("Since ~35.0 GB into this cycle (Nov 3), probes show 1.5 Mbit/s; before, 95 Mbit/s")


def test_one_low_probe_is_a_dip_not_a_throttle():
    assert probe_finding.find(probes([95, 95, 20, 95, 96, 20, 94]), 50) == []


def test_the_lift_is_reported_on_the_second_probe_back_and_the_id_stays_the_same():
    speeds = [95, 95, 95, 1.5, 1.4, 1.6, 94, 95]
    before = probe_finding.find(probes(speeds[:7]), 50)
    after = probe_finding.find(probes(speeds), 50)
    assert before[0]["lifted"] is None
    assert after[0]["id"] == before[0]["id"] == "2026-11-01:p3"
    lift = after[0]["lifted"]
    assert lift["id"] == "2026-11-01:p3:lift" and lift["confirmed_by"] == "p7"
    assert lift["bracket_bytes"] == [50_020_000_000, 60_020_000_000]
    assert "again" in lift["text"] and after[0]["during_mbps"] == 1.5


def test_busy_link_probes_and_failed_probes_are_not_judged():
    ps = probes([95, 95, 95, 10, 10, None])
    for p in ps[3:5]:
        p["quiet"] = False
    ps[5]["stopped_by"] = "error"
    assert probe_finding.find(ps, 50) == []


def test_probes_that_did_not_settle_are_not_judged():
    ps = probes([95, 94, 96, 95, 83, 40, 41, 95])  # 83: a 1-MB probe stopped at its ceiling reads 13 % low
    for p in ps[4:7]:
        p.update(stopped_by="bytes", settled=False)
    assert probe_finding.find(ps, 50) == []  # before: a step down to 40 Mbit/s "since ~45 GB"
    for p in ps[4:7]:
        p.update(stopped_by="settled", settled=True)
    assert len(probe_finding.find(ps, 50)) == 1


def test_probes_file_keeps_this_cycle_and_twelve_before_thinned(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_file, "PAST_CYCLE_KEPT", 5)
    for month in range(1, 16):
        for i in range(8):
            rec = probes([90])[0]
            rec.update(id=f"m{month}-{i}", cycle_start=f"2025-{month:02d}-01" if month <= 12 else f"2026-{month - 12:02d}-01")
            probe_file.add(tmp_path, rec, 50)
    doc = probe_file.Reader(tmp_path).read()
    starts = sorted({p["cycle_start"] for p in doc["probes"]})
    assert len(starts) == 13 and starts[-1] == "2026-03-01" and starts[0] == "2025-03-01"
    assert len(probe_file.of_cycle(doc, "2026-03-01")) == 8
    assert len(probe_file.of_cycle(doc, "2025-05-01")) == 5


def test_budget_counts_every_probe_of_the_cycle_whatever_its_outcome():
    doc = {"probes": probes([95, None, 90], probe_mb=30), "findings": []}
    doc["probes"][1]["stopped_by"] = "cancelled"
    b = budget.budget({"probe_budget_percent": 1}, 10 * 10 ** 9, doc, "2026-11-01")
    assert b == {"budget_bytes": 10 ** 8, "spent_bytes": 9 * 10 ** 7, "left_bytes": 10 ** 7, "used_percent": 90.0}
