"""GET /api/probes: the probes of this cycle and the 12 before, the budget, the finding; gauges for /metrics."""
from flask import Blueprint, jsonify, request

from datacap.measure.probe import budget
from datacap.measure.probe import file as probe_file
from datacap.web.views import views

bp = Blueprint("probes", __name__)


def long_tests(v):
    """Throttle events of this and past tests that know where they were in the cycle."""
    d = v.downloader.read()  # normalized by its reader
    sessions = [{"session_id": t["id"], "throttle_events": [e for e in t["events"] if e["kind"] == "throttle"]}
                for t in reversed(v.history.tests())]  # finished tests (history.json), oldest first
    sessions.append({"session_id": d["session_id"], "throttle_events": d["throttle_events"]})
    out, seen = [], set()
    for s in sessions:
        for ev in s.get("throttle_events") or []:
            key = (s.get("session_id"), ev.get("start"))
            if isinstance(ev, dict) and ev.get("at_cycle_gb") is not None and key not in seen:
                seen.add(key)
                out.append({"session_id": s.get("session_id"), **{k: ev.get(k) for k in (
                    "start", "end", "at_gb", "at_cycle_gb", "baseline_mbps", "throttled_mbps")}})
    return out


def probes_view(v, cycle=None):
    """cycle: None for every kept cycle, "this" for the current one, or a cycle's first day."""
    doc = probe_file.reader(v.data_dir).read()
    summary = v.summary()
    this = summary["start"]
    wanted = this if cycle == "this" else cycle
    shown = doc["probes"] if wanted is None else probe_file.of_cycle(doc, wanted)
    findings = [f for f in doc["findings"] if wanted is None or f.get("cycle_start") == wanted]
    current = [f for f in doc["findings"] if f.get("cycle_start") == this]
    status = v.supervisor.probe_status() if v.supervisor is not None and hasattr(v.supervisor, "probe_status") else None
    return {
        "interval_minutes": v.cfg["probe_interval_minutes"], "budget_percent": v.cfg["probe_budget_percent"],
        "cycle": {k: summary[k] for k in ("start", "end", "used_bytes", "cap_bytes")},
        "budget": budget.budget(v.cfg, summary["cap_bytes"], doc, this),
        "schedule": status, "probes": shown, "findings": findings,
        "throttled": bool(current and current[-1].get("lifted") is None),
        "finding": current[-1] if current else None,
        "cycles": sorted({p["cycle_start"] for p in doc["probes"]}),
        "long_tests": long_tests(v), "updated_at": doc["updated_at"],
    }


@bp.get("/api/probes")
def probes():
    """Every kept cycle's probes; ?cycle=this for the current cycle's, ?cycle=<first day> for one."""
    return jsonify(probes_view(views(), request.args.get("cycle")))


def gauges(v):
    """(name, help, value) for /metrics, from the same view as the API."""
    p = probes_view(v, "this")
    last = next((x for x in reversed(p["probes"]) if x["mbps"]), None)
    f = p["finding"]
    return [
        ("datacap_probe_speed_bytes_per_second", "Newest probe's download rate this cycle (0 before one)",
         last["mbps"] * 1e6 / 8 if last else 0.0),
        ("datacap_probe_cycle_used_bytes", "The cycle's usage when the newest probe ran",
         last["cycle_used_bytes"] if last else 0),
        ("datacap_probes_this_cycle", "Probes run this cycle", len(p["probes"])),
        ("datacap_probe_budget_bytes", "This cycle's probe budget", p["budget"]["budget_bytes"]),
        ("datacap_probe_budget_used_bytes", "Bytes probes used this cycle", p["budget"]["spent_bytes"]),
        ("datacap_probe_throttle_active", "1 while probes show a lasting step down this cycle",
         1.0 if p["throttled"] else 0.0),
        ("datacap_probe_throttle_since_cycle_bytes", "Cycle usage where the newest step down began (0 if none)",
         f["since_cycle_bytes"] if f else 0),
    ]
