"""devices.json: each device's figures as the collector counted them this instant, and its reader.

The collector writes it every interval into the tmpfs runtime folder (data/ as a fallback), beside collector.json:

    {"status": "running" | "stopped", "pid", "updated_at", "interval_seconds", "error",
     "sources": {"gateway": bool, "unifi": {...} | null},
     "lines": {line: {"start", "resets_at", "line_bytes", "devices_bytes", "gateway_bytes"}},
     "devices": [{"mac", "name", "source", "addresses", "line", "today_bytes", "cycle_bytes", "rx_bytes", "tx_bytes",
                  "lines": {line: cycle bytes}, "rx_bps", "tx_bps", "budget_bytes", "budget_per",
                  "budget_used_bytes", "paused", "paused_until", "pause_reason", "last_seen"}],   (most used first)
     "events": [budget pauses, newest first]}

line_bytes is the line's own counter this cycle (both directions, free hours included) at the same tick as the
devices' figures, so what no device accounts for is line_bytes - devices_bytes, never two instants apart.
The device "gateway" is the gateway's own traffic (not a device: never paused, never in devices_bytes).
"""
import os

from datacap import store
from datacap.usage import live_file

NAME = "devices.json"
GATEWAY = "gateway"


class Reader:
    """(document, stale?) of the live file; ({}, True) when there is none."""

    def __init__(self, data_dir):
        self._files = [store.CachedReader(store.runtime_dir(data_dir) / NAME), store.CachedReader(data_dir / NAME)]

    def read(self, default_interval):
        doc = self._files[0].read() or self._files[1].read() or {}
        if not isinstance(doc.get("devices"), list) or not isinstance(doc.get("lines"), dict):
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
    return {"mac": mac, "name": names.get(mac), "source": known.get("source"), "addresses": c.book.of_mac(mac),
            "line": u["line"], "today_bytes": u["today_bytes"], "cycle_bytes": u["cycle_bytes"], "rx_bytes": u["rx"],
            "tx_bytes": u["tx"], "lines": u["lines"], "rx_bps": round(rx_bps), "tx_bps": round(tx_bps),
            "budget_bytes": budget.nbytes if budget else None, "budget_per": budget.per if budget else None,
            "budget_used_bytes": budget.used(u) if budget else None, "paused": pause is not None,
            "paused_until": pause["until"] if pause else None, "pause_reason": pause["reason"] if pause else None,
            "paused_since": pause["since"] if pause else None, "last_seen": known.get("last_seen")}


def document(c, when, line_bytes, names, status="running"):
    """The live file of a DeviceCounter `c` at `when`."""
    usage = c.usage
    macs = [m for m in usage if m != GATEWAY]
    rows = sorted((_device(m, usage.get(m), c, names, c.rates) for m in macs),
                  key=lambda d: (-d["cycle_bytes"], d["name"] or "~", d["mac"]))
    lines = {}
    for name, s in c._summaries.items():
        mine = sum(d["lines"].get(name, 0) for d in rows)
        gateway = (usage.get(GATEWAY) or {}).get("lines", {}).get(name, 0)
        lines[name] = {"start": s["start"], "resets_at": s["resets_at"], "line_bytes": line_bytes.get(name),
                       "devices_bytes": mine, "gateway_bytes": gateway}
    return {"status": status, "pid": os.getpid(), "updated_at": when.isoformat(timespec="milliseconds"),
            "interval_seconds": c.interval, "error": c.error,
            "sources": {"gateway": c.kernel is not None, "unifi": c.unifi.status() if c.unifi else None},
            "lines": lines, "devices": rows, "events": c.events}
