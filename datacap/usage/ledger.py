"""The durable usage ledger (usage.json): counter deltas, daily totals, checkpoint, alerts.

Counter logic is our own (not psutil's nowrap, which forgets across restarts):
a counter that grows gives new - old; one that shrinks is a wrap at the counter's width
when the implied bytes are plausible for the link, else a reset (count what it shows
since), else discarded. Every wrap, reset, discard, reboot and gap is a counter event.
"""
import logging
import os
import sys
from datetime import timedelta

from datacap import store

log = logging.getLogger("collector")

VERSION = 1
DAYS_KEPT = 430  # more than 13 months
HOURS_KEPT = 72
EVENTS_KEPT = 200
ALERTS_KEPT = 200
COUNTER_BITS = 64 if sys.maxsize > 2 ** 32 else 32
FALLBACK_LINK_BPS = 12.5e9  # 100 Gbit/s when the link speed is unknown
BTIME_TOLERANCE_S = 5.0


def counter_delta(old, new, bits, limit_bytes):
    """(bytes, reason): reason is None for a normal step, else wrapN / reset / implausible."""
    if new >= old:
        d = new - old
        return (d, None) if d <= limit_bytes else (0, "implausible")
    wrap = (1 << bits) - old + new
    if old < (1 << bits) and wrap <= limit_bytes:
        return wrap, f"wrap{bits}"
    if new <= limit_bytes:
        return new, "reset"
    return 0, "implausible"


def empty():
    return {"version": VERSION, "btime": None, "checkpoint": None, "days": {}, "hours": {},
            "totals": {}, "counter_events": [], "alerts": []}


def valid(ledger):
    """A ledger we can trust enough to keep counting on."""
    return (isinstance(ledger, dict) and ledger.get("version") == VERSION
            and all(isinstance(ledger.get(k), dict) for k in ("days", "hours", "totals"))
            and isinstance(ledger.get("counter_events"), list) and isinstance(ledger.get("alerts"), list))


def load(path, now):
    """Read usage.json; a corrupt one is moved aside and the last good copy restored."""
    if not path.exists():
        return empty()
    data = store.read_json(path)
    if valid(data):
        return data
    aside = path.with_name(f"{path.name}.corrupt-{now.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, aside)
    backup = store.read_json(path.with_name(path.name + ".bak"))
    if valid(backup):
        log.error("usage.json was corrupt: moved to %s, restored usage.json.bak", aside.name)
        return backup
    log.error("usage.json was corrupt: moved to %s, no valid backup, starting a new ledger", aside.name)
    return empty()


class Ledger:
    """In-memory view of usage.json; the collector is its only writer."""

    def __init__(self, data, counter_bits=COUNTER_BITS):
        self.data = data
        self.bits = counter_bits

    def event(self, when, interface, reason, nbytes, detail=""):
        self.data["counter_events"].append({"time": when.isoformat(timespec="seconds"), "interface": interface,
                                            "reason": reason, "bytes": int(nbytes), "detail": detail})
        del self.data["counter_events"][:-EVENTS_KEPT]

    def add(self, name, rx, tx, when):
        """Credit bytes to an interface at local time `when`."""
        if not rx and not tx:
            return
        for key, table in ((when.date().isoformat(), "days"), (when.strftime("%Y-%m-%dT%H"), "hours")):
            entry = self.data[table].setdefault(key, {}).setdefault(name, [0, 0])
            entry[0] += rx
            entry[1] += tx
        total = self.data["totals"].setdefault(name, [0, 0])
        total[0] += rx
        total[1] += tx

    def resume(self, counters, btime, boottime_s, when, counted):
        """First sample after start: count what happened while we were not running."""
        cp = self.data.get("checkpoint")
        same_boot = cp and self.data.get("btime") is not None and abs(self.data["btime"] - btime) < BTIME_TOLERANCE_S
        if cp and not same_boot:
            for name in counted:  # a reboot: everything since boot is new traffic
                if name in counters:
                    rx, tx = counters[name]
                    self.add(name, rx, tx, when)
                    self.event(when, name, "reboot", rx + tx, "counted the counters since boot")
        elif cp:
            elapsed = max(boottime_s - cp["boottime_s"], 1.0) if cp.get("boottime_s") is not None else None
            gap = self.step(counters, cp["counters"], elapsed, when, counted, limit_bps=None)
            if gap:
                self.event(when, "*", "gap", gap, "counted the traffic while the collector was not running")
        self.data["btime"] = btime

    def step(self, counters, previous, elapsed_s, when, counted, limit_bps):
        """Credit counted interfaces with the change from previous to counters; return bytes credited.

        elapsed_s is seconds since `previous` (a number, a {name: seconds} dict, or None for unknown).
        """
        credited = 0
        for name in counted:
            if name not in counters or name not in previous:
                continue
            elapsed = elapsed_s.get(name) if isinstance(elapsed_s, dict) else elapsed_s
            limit = (limit_bps(name) if limit_bps else FALLBACK_LINK_BPS) * (elapsed or 1e9)
            deltas = []
            for direction, old, new in zip(("rx", "tx"), previous[name], counters[name]):
                d, reason = counter_delta(old, new, self.bits, limit)
                if reason:
                    self.event(when, name, reason, d if reason != "implausible" else new - old,
                               f"{direction} {old} -> {new}")
                deltas.append(d)
            self.add(name, deltas[0], deltas[1], when)
            credited += deltas[0] + deltas[1]
        return credited

    def checkpoint(self, counters, boottime_s, when):
        self.data["checkpoint"] = {"at": when.isoformat(timespec="seconds"), "boottime_s": boottime_s,
                                   "counters": {k: list(v) for k, v in counters.items()}}

    def prune(self, today):
        oldest_day = (today - timedelta(days=DAYS_KEPT)).isoformat()
        for day in [d for d in self.data["days"] if d < oldest_day]:
            del self.data["days"][day]
        hours = sorted(self.data["hours"])
        for hour in hours[:-HOURS_KEPT]:
            del self.data["hours"][hour]

    def alerts_due(self, summary, thresholds, when):
        """Record each threshold once per cycle; return the new alerts."""
        fired = {(a["cycle_start"], a["percent"]) for a in self.data["alerts"]}
        new = []
        for pct in thresholds:
            if summary["percent"] >= pct and (summary["start"], pct) not in fired:
                new.append({"cycle_start": summary["start"], "percent": pct, "at": when.isoformat(timespec="seconds"),
                            "used_bytes": summary["used_bytes"], "cap_bytes": summary["cap_bytes"]})
        self.data["alerts"].extend(new)
        del self.data["alerts"][:-ALERTS_KEPT]
        return new


def _pairs(entry):
    """{iface: [rx, tx]} as the API shows it, skipping anything malformed."""
    return {n: {"rx_bytes": v[0], "tx_bytes": v[1]} for n, v in (entry or {}).items()
            if isinstance(v, list) and len(v) == 2}


def totals(ledger):
    """All-time counted bytes per interface."""
    return _pairs((ledger or {}).get("totals"))


def daily(ledger, count, used_bytes):
    """Per-day rows, oldest first; used_bytes(entry, count) is the cap's rule for a day."""
    days = (ledger or {}).get("days") or {}
    return [{"date": day, "used_bytes": used_bytes(v, count), "interfaces": _pairs(v)} for day, v in sorted(days.items())]


def hourly(ledger, count, used_bytes):
    hours = (ledger or {}).get("hours") or {}
    return [{"hour": h, "used_bytes": used_bytes(v, count)} for h, v in sorted(hours.items())]
