"""devices.json: each device's figures as the collector counted them this instant, and its reader.

The collector writes it every interval into the tmpfs runtime folder (data/ as a fallback), beside collector.json:

    {"status": "running" | "stopped", "pid", "updated_at", "interval_seconds", "error",
     "sources": {"gateway": bool, "unifi": {...} | null},
     "lines": {line: {"start", "resets_at", "line_bytes", "devices_bytes", "gateway_bytes"}},
     "columns": COLUMNS, "devices": [[a value per column], ...],   (most used first)
     "events": [budget pauses, newest first]}

Rows are lists under "columns" (the keys once, not 250 times: a third less JSON to make every 2 s); the reader
gives them back as objects. `lines` of a device is {line: its bytes this cycle on that line}.

line_bytes is the line's own counter this cycle (both directions, free hours included) at the same tick as the
devices' figures, so what no device accounts for is line_bytes - devices_bytes, never two instants apart.
The device "gateway" is the gateway's own traffic (not a device: never paused, never in devices_bytes).
"""
import os

from datacap import store
from datacap.usage import live_file

NAME = "devices.json"
GATEWAY = "gateway"
COLUMNS = ("mac", "name", "source", "addresses", "line", "today_bytes", "cycle_bytes", "rx_bytes", "tx_bytes", "lines",
           "rx_bps", "tx_bps", "budget_bytes", "budget_per", "budget_used_bytes", "paused", "paused_until",
           "pause_reason", "paused_since", "last_seen")
_LINES, _CYCLE, _NAME, _MAC = COLUMNS.index("lines"), COLUMNS.index("cycle_bytes"), COLUMNS.index("name"), 0


def expand(doc):
    """The document with its device rows as objects ({} when it is not a live file of ours)."""
    columns, rows = doc.get("columns"), doc.get("devices")
    if not isinstance(columns, list) or not isinstance(rows, list) or not isinstance(doc.get("lines"), dict):
        return {}
    return {**doc, "devices": [dict(zip(columns, r)) for r in rows if isinstance(r, list) and len(r) == len(columns)]}


class Reader:
    """(document, stale?) of the live file; ({}, True) when there is none."""

    def __init__(self, data_dir):
        self._files = [store.CachedReader(store.runtime_dir(data_dir) / NAME), store.CachedReader(data_dir / NAME)]
        self._expanded = (None, {})  # (the parsed file, its expansion), replaced whole: safe across request threads

    def read(self, default_interval):
        raw = self._files[0].read() or self._files[1].read() or {}
        if raw is not self._expanded[0]:
            self._expanded = (raw, expand(raw))
        doc = self._expanded[1]
        if not doc:
            return {}, True
        age = live_file.age_seconds(doc.get("updated_at"))
        interval = doc.get("interval_seconds")
        interval = interval if isinstance(interval, (int, float)) and interval > 0 else default_interval
        stale = age is None or age > live_file.STALE_INTERVALS * interval + 2 or doc.get("status") != "running"
        return doc, stale


def _device(mac, u, c, names, rates):
    """One device's row (u: its usage, or None without bytes this cycle; c: the counter)."""
    u = u or {"today_bytes": 0, "cycle_bytes": 0, "rx": 0, "tx": 0, "lines": {}, "line": c._first_line}
    budget = c.rules.budgets.get(mac)
    pause = c.rules.paused.get(mac)
    known = c.known.get(mac, {})
    rx_bps, tx_bps = rates.get(mac, (0, 0))
    return [mac, names.get(mac), known.get("source"), c.book.of_mac(mac), u["line"], u["today_bytes"], u["cycle_bytes"],
            u["rx"], u["tx"], u["lines"], round(rx_bps), round(tx_bps), budget.nbytes if budget else None,
            budget.per if budget else None, budget.used(u) if budget else None, pause is not None,
            pause["until"] if pause else None, pause["reason"] if pause else None, pause["since"] if pause else None,
            known.get("last_seen")]  # in COLUMNS' order


def document(c, when, line_bytes, names, status="running"):
    """The live file of a DeviceCounter `c` at `when`."""
    usage = c.usage
    macs = [m for m in usage if m != GATEWAY]
    rows = sorted((_device(m, usage.get(m), c, names, c.rates) for m in macs),
                  key=lambda d: (-d[_CYCLE], d[_NAME] or "~", d[_MAC]))
    lines = {}
    for name, s in c._summaries.items():
        mine = sum(d[_LINES].get(name, 0) for d in rows)
        gateway = (usage.get(GATEWAY) or {}).get("lines", {}).get(name, 0)
        lines[name] = {"start": s["start"], "resets_at": s["resets_at"], "line_bytes": line_bytes.get(name),
                       "devices_bytes": mine, "gateway_bytes": gateway}
    return {"status": status, "pid": os.getpid(), "updated_at": when.isoformat(timespec="milliseconds"),
            "interval_seconds": c.interval, "error": c.error,
            "sources": {"gateway": c.kernel is not None, "unifi": c.unifi.status() if c.unifi else None},
            "lines": lines, "columns": COLUMNS, "devices": rows, "events": c.events}
