"""The cap: usage this cycle, and the ISP meter's readings a user enters to correct it."""
from datetime import date

from flask import Blueprint, jsonify, request

from datacap import config as configmod
from datacap.usage import adjustments, cycles, imports, ledger_file, lines, topups
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

bp = Blueprint("usage", __name__)


@bp.get("/api/usage")
def usage():
    return jsonify(views().usage_view())


@bp.get("/api/sources")
def sources():
    """Each counter source: what it is, whether it counts, whether it answers, and its totals."""
    return jsonify(sources=views().sources())


@bp.post("/api/usage/adjust")
def adjust():
    """The ISP meter's reading for this period, or ("period": "previous") for the one before (its rollover)."""
    body = json_body()
    unknown = sorted(set(body) - {"used_gb", "used_bytes", "note", "period", "line"})
    if unknown:
        raise BadRequest(f"unknown field(s) in an ISP reading: {', '.join(unknown)}")
    gb, nbytes = body.get("used_gb"), body.get("used_bytes")
    value = nbytes if nbytes is not None else (gb * 1e9 if configmod.is_number(gb) else None)
    if not configmod.is_number(value) or not 0 <= value <= 1e18:
        raise BadRequest("send the ISP meter's reading for this cycle as used_gb (decimal GB) or used_bytes, >= 0")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 200:
        raise BadRequest("note must be a string of at most 200 characters")
    period = body.get("period", "this")
    if period not in ("this", "previous"):
        raise BadRequest('period must be "this" (the default) or "previous"')
    v = views()
    line = line_named(v, body)
    with v.state_lock:
        summary = v.summary(line)
        if period == "previous":
            if summary["previous_start"] is None:
                raise BadRequest("this plan has no previous period (a prepaid bucket)")
            summary = previous_period(v, line, summary)
        item = adjustments.add(v.data_dir, summary, int(value), note, line.name)
    return jsonify(item), 201


def line_named(v, body):
    """The line a request is about: its "line", or the first line."""
    name = body.get("line")
    line = lines.by_name(v.cfg, name) if name is None or isinstance(name, str) else None
    if line is None:
        raise BadRequest(f"line: no line is called {name!r} (the lines: "
                         f"{', '.join(x.name for x in lines.of(v.cfg))})")
    return line


def previous_period(v, line, summary):
    """What an ISP reading for the previous period is set against: its first day and datacap's count of it."""
    first, start = date.fromisoformat(summary["previous_start"]), summary["start"]
    live = v.cycle.source(v.cfg["update_interval_seconds"])[0]
    days = {**(v.usage.line(line.name).get("days") or {}),
            **(ledger_file.line_of(live, line.name).get("days") or {})}
    counted = sum(cycles.used_bytes(e, line.count) for d, e in days.items() if first.isoformat() <= d < start)
    return {"start": first.isoformat(), "counted_bytes": counted}


@bp.post("/api/usage/topup")
def topup():
    """Add data to the prepaid bucket: {"gb": 10, "expires": "2026-12-31" (optional, moves the expiry later)}."""
    body = json_body()
    v = views()
    line = line_named(v, body)
    if line.plan.kind != "prepaid":
        raise BadRequest(f'top-ups are for a prepaid plan: set "plan": {{"kind": "prepaid", ...}} for {line.name} first')
    unknown = sorted(set(body) - {"gb", "expires", "line"})
    if unknown:
        raise BadRequest(f"unknown field(s) in a top-up: {', '.join(unknown)}")
    gb, expires = body.get("gb"), body.get("expires")
    if not configmod.is_number(gb) or not 0.001 <= gb <= 1_000_000:
        raise BadRequest("gb: send the top-up's size in decimal GB, from 0.001 to 1000000")
    start = date.fromisoformat(v.summary(line)["start"])
    if expires is not None:
        try:
            ok = isinstance(expires, str) and date.fromisoformat(expires) > start
        except ValueError:
            ok = False
        if not ok:
            raise BadRequest('expires: send a date after the bucket started, like "2026-12-31", or leave it out')
    with v.state_lock:
        item = topups.add(v.data_dir, start, gb, expires, line.name)
    return jsonify(item), 201


@bp.post("/api/usage/import")
def import_days():
    """Past daily totals of a line from vnStat: the body is `vnstat -i IFACE --json d`'s output;
    ?line=NAME (default the first line), ?interface=NAME when the JSON holds several."""
    v = views()
    line = line_named(v, {"line": request.args.get("line")} if request.args.get("line") is not None else {})
    try:
        iface, created, days = imports.from_vnstat(json_body(required=True), request.args.get("interface"))
    except ValueError as exc:
        raise BadRequest(f"{exc}; nothing was imported") from None
    with v.state_lock:
        item = imports.add(v.data_dir, line.name, iface, created, days)
    return jsonify({**item, "days": len(days), "from": min(days), "to": max(days)}), 201


@bp.delete("/api/usage/topup/<item_id>")
def undo_topup(item_id):
    return _undo(topups.file, item_id, "top-up")


@bp.delete("/api/usage/adjust/<item_id>")
def undo_adjust(item_id):
    return _undo(adjustments.file, item_id, "adjustment")


def _undo(file_of, item_id, what):
    v = views()
    with v.state_lock:
        item = file_of(v.data_dir).undo(item_id)
    if item is None:
        return jsonify(error=f"no {what} with id {item_id!r}"), 404
    return jsonify(item)
