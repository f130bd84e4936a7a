"""GET /api/export: speed samples, daily usage, the kept tests and their events (all kinds), as CSV or JSON."""
import csv
import io
import json
from datetime import datetime

from flask import Blueprint, Response, request

from datacap.usage import lines
from datacap.web import devices_view
from datacap.web.errors import BadRequest
from datacap.web.views import views

bp = Blueprint("export", __name__)

FIELDS = {
    "daily": ["date", "used_bytes", "used_gb", "line"],
    "events": ["test_id", "kind", "start", "end", "at_bytes", "at_gb", "at_cycle_gb", "baseline_mbps",
               "throttled_mbps", "duration_s", "line"],
    "history": ["id", "start", "end", "status", "duration_s", "total_gb", "streams", "baseline_mbps", "avg_mbps",
                "peak_mbps", "throttled", "cycle_gb_at_start", "cycle_gb_at_end", "verdict", "urls", "line"],
    "samples": ["elapsed_s", "time", "speed_mbps", "session_bytes"],
    "devices": ["date", "mac", "name", "line", "rx_bytes", "tx_bytes", "bytes"],
}


def rows(v, what):
    first = lines.of(v.cfg)[0].name  # the line of a test from before lines
    if what == "daily":  # every line's days, line by line
        return [{"date": d["date"], "used_bytes": d["used_bytes"], "used_gb": round(d["used_bytes"] / 1e9, 6),
                 "line": b["name"]} for b in v.usage_view()["lines"] for d in b["daily"]]
    if what == "devices":  # each device's days (rx: to the device), as devices.db holds them (a few minutes old)
        return devices_view.days(v)
    if what == "history":  # newest first, as /api/history lists them; URLs joined for a spreadsheet cell
        return [{**{k: t.get(k) for k in FIELDS["history"]}, "urls": " ".join(map(str, t["urls"])),
                 "line": t.get("line") or first} for t in v.history.tests()]
    stats = v.stats()
    if what == "events":  # every kept test's events, oldest first, then the live test's
        tests = [(t["id"], t["events"], t.get("line")) for t in reversed(v.history.tests())]
        live = v.downloader.read()
        if live["session_id"] and live["session_id"] not in {t[0] for t in tests}:
            tests.append((live["session_id"], live["events"] or live["throttle_events"], live.get("line")))
        return [{**{k: e.get(k) for k in FIELDS["events"]}, "test_id": i, "kind": e.get("kind", "throttle"),
                 "line": line or first} for i, evs, line in tests for e in evs]
    points = {p["t"]: p for p in stats.get("history", []) + stats["data_points"]}
    return [{"elapsed_s": p["t"], "time": p["time"], "speed_mbps": p["mbps"], "session_bytes": p["bytes"]}
            for _, p in sorted(points.items())]


@bp.get("/api/export")
def export():
    fmt, what = request.args.get("format", "csv"), request.args.get("what", "samples")
    if fmt not in ("csv", "json") or what not in FIELDS:
        raise BadRequest("use format=csv|json and what=samples|daily|events|history|devices")
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
