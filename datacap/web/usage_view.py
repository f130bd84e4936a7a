"""/api/usage: every line's cycle figure, its days and records; the first line's at the top, as before lines.

Reads the collector's files through their readers (usage/current.py, ledger_file.py, live_file.py) and the
server's own records (ISP readings, top-ups); datacap's own use comes from web/own_use.py.
"""

from datacap import store
from datacap.usage import adjustments, cycles, ledger_file, lines, topups
from datacap.web import own_use


def summary(v, line=None):
    """A line's cycle figure (the first line's for None or an unknown name), from the collector's live count."""
    found = line if isinstance(line, lines.Line) else lines.by_name(v.cfg, line) or lines.of(v.cfg)[0]
    first = lines.of(v.cfg)[0].name
    return v.cycle.summary(v.cfg, cycles.local_now(), found, own_use.records(v, found.name, first))


def sources_of(v, line, sources, live):
    """The counter sources of a line: its router, or this computer's interfaces (those counting toward it)."""
    out = [s for s in sources if s.get("line") == line.name]
    mine = sorted(n for n, i in live["interfaces"].items() if isinstance(i, dict) and i.get("line") == line.name)
    local = next((s for s in sources if s["type"] == "local" and line.name in s.get("lines", [])), None)
    if local:
        out.insert(0, {**local, "label": f"This computer ({', '.join(mine) or 'no interface yet'})"})
    return out


def line_block(v, line, sources, live, now_live):
    """One line's part of /api/usage."""
    first = lines.of(v.cfg)[0].name
    cycle = summary(v, line)
    stored = v.usage.line(line.name)
    days = {"days": {**(stored.get("days") or {}), **(ledger_file.line_of(live, line.name).get("days") or {})}}
    mine = sources_of(v, line, sources, now_live)
    return {
        "name": line.name, "cap_bytes": cycle["cap_bytes"], "cycle": cycle, "own_bytes": cycle["own_bytes"],
        "stop_at_cap": line.stop_at_cap, "source": mine[0]["label"] if mine else None,
        "sources": mine, "today": {"date": cycles.local_now().date().isoformat(), "used_bytes": cycle["today_bytes"]},
        "daily": ledger_file.daily(days, line.count, cycles.used_bytes),
        "hourly": ledger_file.hourly(stored, line.count, cycles.used_bytes),
        "alerts": stored.get("alerts", []),
        "adjustments": adjustments.items(store.ItemsFile.of_line(v.adjustments.read(), line.name, first)),
        "topups": topups.items(store.ItemsFile.of_line(v.cycle.topups.read(), line.name, first)),
        "plan_warnings": line.plan.warnings(cycles.local_now().date(),
                                            store.ItemsFile.of_line(v.cycle.topups.read(), line.name, first)),
    }


def usage(v):
    live = v.cycle.source(v.cfg["update_interval_seconds"])[0]  # the newer of live file and ledger
    now_live = v.live.read(v.cfg["update_interval_seconds"])[0]  # the collector's view of the interfaces
    sources = v.sources()
    blocks = [line_block(v, x, sources, live, now_live) for x in lines.of(v.cfg)]
    top = blocks[0]
    return {
        **{k: top[k] for k in ("cap_bytes", "cycle", "today", "daily", "hourly", "alerts", "adjustments", "topups",
                               "plan_warnings")},
        "cap_gb": top["cap_bytes"] / 1e9, "count": lines.of(v.cfg)[0].count, "billing_day": v.cfg["billing_day"],
        "interfaces": ledger_file.totals(live), "counted": live.get("counted", []),
        "counter_events": v.usage.read().get("counter_events", []), "updated_at": v.usage.read().get("updated_at"),
        "ledger_error": v.live.read(v.cfg["update_interval_seconds"])[0]["last_error"],
        "sources": sources, "lines": blocks,
    }
