"""/api/devices: each device's day and cycle, budget and pause; each line's devices against its own counter.

Reads the collector's devices.json (devices/live.py) as it is, at most an interval old; without it (the collector
not started since boot) the figures come from devices.db, as of its last flush.
"""
from datetime import date, timedelta

from datacap.devices import live
from datacap.devices import settings as devices_settings
from datacap.usage import lines

FIELDS = ("mac", "name", "addresses", "line", "today_bytes", "cycle_bytes", "budget_bytes", "budget_per",
          "budget_used_bytes", "paused", "paused_until", "pause_reason", "paused_since", "rx_bytes", "tx_bytes",
          "rx_bps", "tx_bps", "lines", "source", "last_seen")


def _from_db(v, settings):
    """A live-file-like document from devices.db when there is no live file."""
    today = date.today().isoformat()
    starts = {x.name: v.summary(x)["start"] for x in lines.of(v.cfg)}
    first = lines.of(v.cfg)[0].name
    usage = {}
    for day, mac, line, rx, tx in v.devices_db.days(min(starts.values())):
        u = usage.setdefault(mac, {"today_bytes": 0, "cycle_bytes": 0, "rx_bytes": 0, "tx_bytes": 0, "lines": {}})
        if day >= starts.get(line or first, starts[first]):
            u["cycle_bytes"] += rx + tx
            u["rx_bytes"], u["tx_bytes"] = u["rx_bytes"] + rx, u["tx_bytes"] + tx
            u["lines"][line] = u["lines"].get(line, 0) + rx + tx
        if day == today:
            u["today_bytes"] += rx + tx
    known, pauses = v.devices_db.devices(), v.devices_db.pauses()
    rows = []
    for mac in sorted(set(usage) | set(pauses) - {live.GATEWAY}, key=lambda m: -usage.get(m, {}).get("cycle_bytes", 0)):
        u = usage.get(mac, {"today_bytes": 0, "cycle_bytes": 0, "lines": {}})
        budget = settings.budgets.get(mac) if settings else None
        p = pauses.get(mac)
        rows.append({**u, "mac": mac, "name": (settings.names if settings else {}).get(mac) or known.get(mac, {}).get("name"),
                     "addresses": known.get(mac, {}).get("addresses", []),
                     "line": max(u["lines"], key=u["lines"].get) if u["lines"] else first,
                     "budget_bytes": budget[0] if budget else None, "budget_per": budget[1] if budget else None,
                     "paused": p is not None, "paused_until": p and p["until"], "pause_reason": p and p["reason"],
                     "paused_since": p and p["since"], "source": known.get(mac, {}).get("source"),
                     "last_seen": known.get(mac, {}).get("last_seen")})
    gateway = usage.get(live.GATEWAY, {"lines": {}})["lines"]
    line_rows = {name: {"start": s, "line_bytes": None, "gateway_bytes": gateway.get(name, 0),
                        "devices_bytes": sum(r["lines"].get(name, 0) for r in rows)} for name, s in starts.items()}
    return {"devices": rows, "lines": line_rows, "events": v.devices_db.events(20), "error": None, "sources": {}}


OFF = {"enabled": False, "live": False, "updated_at": None, "error": None, "sources": {}, "devices": [], "lines": [],
       "unattributed_bytes": {}, "events": []}


def devices(v):
    settings = devices_settings.of(v.cfg)
    if settings is None:
        return dict(OFF)  # (the history stays readable through /api/devices/<mac> and the export)
    doc, stale = v.devices_live.read(v.cfg["update_interval_seconds"])
    from_db = not doc
    if from_db:
        doc = _from_db(v, settings) if v.devices_db.file.exists() else {"devices": [], "lines": {}, "events": []}
    out_lines = []
    for name, x in (doc.get("lines") or {}).items():
        line_bytes, mine = x.get("line_bytes"), x.get("devices_bytes", 0)
        out_lines.append({"name": name, "start": x.get("start"), "resets_at": x.get("resets_at"),
                          "line_bytes": line_bytes, "devices_bytes": mine, "gateway_bytes": x.get("gateway_bytes", 0),
                          "unattributed_bytes": None if line_bytes is None else max(0, line_bytes - mine)})
    rows = [{k: d.get(k) for k in FIELDS} for d in doc.get("devices", []) if isinstance(d, dict)]
    return {"enabled": settings is not None, "live": not stale and not from_db, "updated_at": doc.get("updated_at"),
            "error": doc.get("error"), "sources": doc.get("sources") or {}, "devices": rows, "lines": out_lines,
            "unattributed_bytes": {x["name"]: x["unattributed_bytes"] for x in out_lines},
            "events": doc.get("events") or []}


def known(v, mac):
    """Is this a device datacap has seen or been told about?"""
    settings = devices_settings.of(v.cfg)
    if settings and (mac in settings.names or mac in settings.budgets):
        return True
    doc, _ = v.devices_live.read(v.cfg["update_interval_seconds"])
    if any(isinstance(d, dict) and d.get("mac") == mac for d in doc.get("devices", [])):
        return True
    return mac in v.devices_db.devices()


def history(v, mac, days):
    """A device's bytes per day (all lines) for the last `days` days, oldest first."""
    since = (date.today() - timedelta(days=days - 1)).isoformat()
    out = {}
    for day, _, line, rx, tx in v.devices_db.days(since, mac=mac):
        entry = out.setdefault(day, {"date": day, "rx_bytes": 0, "tx_bytes": 0, "bytes": 0, "lines": {}})
        entry["rx_bytes"] += rx
        entry["tx_bytes"] += tx
        entry["bytes"] += rx + tx
        entry["lines"][line] = entry["lines"].get(line, 0) + rx + tx
    return [out[d] for d in sorted(out)]


def days(v, keep=400):
    """Every device's days (the gateway's own too), oldest first, for the CSV export."""
    settings = devices_settings.of(v.cfg)
    names = {m: d.get("name") for m, d in v.devices_db.devices().items()}
    names.update(settings.names if settings else {})
    names[live.GATEWAY] = "this gateway"
    since = (date.today() - timedelta(days=keep)).isoformat()
    return [{"date": day, "mac": mac, "name": names.get(mac), "line": line, "rx_bytes": rx, "tx_bytes": tx,
             "bytes": rx + tx} for day, mac, line, rx, tx in v.devices_db.days(since)]
