"""GET /api/export: speed samples, daily usage, the kept tests and their events (all kinds), as CSV or JSON."""
import csv
import io
import json
from datetime import datetime

from flask import Blueprint, Response, request

from datacap.web.errors import BadRequest
from datacap.web.views import views

bp = Blueprint("export", __name__)

FIELDS = {
    "daily": ["date", "used_bytes", "used_gb"],
    "events": ["test_id", "kind", "start", "end", "at_bytes", "at_gb", "at_cycle_gb", "baseline_mbps",
               "throttled_mbps", "duration_s"],
    "history": ["id", "start", "end", "status", "duration_s", "total_gb", "streams", "baseline_mbps", "avg_mbps",
                "peak_mbps", "throttled", "cycle_gb_at_start", "cycle_gb_at_end", "verdict", "urls"],
    "samples": ["elapsed_s", "time", "speed_mbps", "session_bytes"],
}


def rows(v, what):
    if what == "daily":
        return [{"date": d["date"], "used_bytes": d["used_bytes"], "used_gb": round(d["used_bytes"] / 1e9, 6)}
                for d in v.usage_view()["daily"]]
    if what == "history":  # newest first, as /api/history lists them; URLs joined for a spreadsheet cell
        return [{**{k: t[k] for k in FIELDS["history"]}, "urls": " ".join(map(str, t["urls"]))} for t in v.history.tests()]
    stats = v.stats()
    if what == "events":  # every kept test's events, oldest first, then the live test's
        tests = [(t["id"], t["events"]) for t in reversed(v.history.tests())]
        live = v.downloader.read()
        if live["session_id"] and live["session_id"] not in {i for i, _ in tests}:
            tests.append((live["session_id"], live["events"] or live["throttle_events"]))
        return [{**{k: e.get(k) for k in FIELDS["events"]}, "test_id": i, "kind": e.get("kind", "throttle")}
                for i, evs in tests for e in evs]
    points = {p["t"]: p for p in stats.get("history", []) + stats["data_points"]}
    return [{"elapsed_s": p["t"], "time": p["time"], "speed_mbps": p["mbps"], "session_bytes": p["bytes"]}
            for _, p in sorted(points.items())]


@bp.get("/api/export")
def export():
    fmt, what = request.args.get("format", "csv"), request.args.get("what", "samples")
    if fmt not in ("csv", "json") or what not in FIELDS:
        raise BadRequest("use format=csv|json and what=samples|daily|events|history")
    found = rows(views(), what)
    name = f"datacap-{what}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "json":
        return Response(json.dumps(found), mimetype="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS[what], lineterminator="\r\n")
    writer.writeheader()  # even with no rows yet: a spreadsheet still sees the columns
    writer.writerows(found)
    return Response(out.getvalue(), mimetype="text/csv", headers=headers)
