"""The durable usage ledger (usage.json): counter deltas, daily totals, checkpoint, alerts.

Counter logic is our own (not psutil's nowrap, which forgets across restarts; see counters.py).
Every wrap, reset, discard, reboot and gap is a counter event. A reboot is a new kernel boot_id
(btime moves when NTP steps the clock, so it is only the fallback, corroborated by a counter
that went down).
"""
import logging
import os
import time
from datetime import datetime, timedelta

from datacap import store
from datacap.usage import counters as countersmod

log = logging.getLogger("collector")

VERSION = 1
DAYS_KEPT = 430  # more than 13 months
HOURS_KEPT = 72
EVENTS_KEPT = 200
ALERTS_KEPT = 200
BTIME_TOLERANCE_S = 5.0
READ_ATTEMPTS = 5  # a transient read error (EIO, EACCES) is retried, never taken for corruption


def empty(when=None):
    return {"version": VERSION, "boot_id": None, "btime": None, "checkpoint": None, "days": {}, "hours": {},
            "totals": {}, "counter_events": [], "alerts": [], "wide": [], "free": {},
            "monitoring_since": when.isoformat(timespec="seconds") if when else None}


def _pair(v):
    return isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)


def _table(t):
    return isinstance(t, dict) and all(isinstance(e, dict) and all(_pair(v) for v in e.values()) for e in t.values())


def _checkpoint(cp):
    return cp is None or (isinstance(cp, dict) and isinstance(cp.get("counters"), dict)
                          and all(_pair(v) for v in cp["counters"].values())
                          and (cp.get("boottime_s") is None or isinstance(cp["boottime_s"], (int, float))))


def valid(ledger):
    """A ledger we can trust enough to keep counting on: every field there and of its type."""
    return (isinstance(ledger, dict) and ledger.get("version") == VERSION
            and _table(ledger.get("days")) and _table(ledger.get("hours"))
            and isinstance(ledger.get("totals"), dict) and all(_pair(v) for v in ledger["totals"].values())
            and "checkpoint" in ledger and _checkpoint(ledger["checkpoint"])
            and isinstance(ledger.get("counter_events"), list) and isinstance(ledger.get("alerts"), list)
            and all(isinstance(a, dict) for a in ledger["alerts"]))


def upgrade(ledger):
    """Fields newer versions added, filled in on a ledger that is otherwise valid."""
    ledger.setdefault("boot_id", None)
    ledger.setdefault("btime", None)
    if not isinstance(ledger.get("wide"), list):
        ledger["wide"] = []
    if not _table(ledger.get("free")):
        ledger["free"] = {}
    if not isinstance(ledger.get("monitoring_since"), str):
        first = min(ledger["days"], default=None)
        ledger["monitoring_since"] = (datetime.fromisoformat(first).astimezone().isoformat(timespec="seconds")
                                      if first else None)
    return ledger


def _read(path):
    """The parsed file (None when it does not parse); OSError after READ_ATTEMPTS transient failures."""
    for attempt in range(READ_ATTEMPTS):
        try:
            with open(path, "rb") as f:
                raw = f.read()
            break
        except FileNotFoundError:
            raise
        except OSError as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise
            log.warning("cannot read %s (%s): retrying", path.name, exc.strerror or exc)
            time.sleep(0.2 * (attempt + 1))
    try:
        return store.parse_json(raw)
    except ValueError:
        return None


def load(path, now):
    """Read usage.json; a torn or incomplete one is moved aside and the last good copy restored.

    A read error is not damage: it raises OSError, the collector exits and is restarted with back-off.
    """
    try:
        data = _read(path)
    except FileNotFoundError:
        return empty(now)
    if valid(data):
        return upgrade(data)
    aside = path.with_name(f"{path.name}.corrupt-{now.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, aside)
    try:
        backup = _read(path.with_name(path.name + ".bak"))
    except OSError:
        backup = None
    if valid(backup):
        log.error("usage.json was damaged: moved to %s, restored usage.json.bak", aside.name)
        return upgrade(backup)
    log.error("usage.json was damaged: moved to %s, no valid backup, starting a new ledger", aside.name)
    return empty(now)


class Ledger:
    """In-memory view of usage.json; the collector is its only writer."""

    def __init__(self, data):
        self.data = data
        self.urgent = False  # something a user reviews (a counter event) waits for the next flush
        self.free_share = lambda a, b: 0.0  # the share of [a, b] (epoch s) inside the plan's free windows

    def event(self, when, interface, reason, nbytes, detail=""):
        self.data["counter_events"].append({"time": when.isoformat(timespec="seconds"), "interface": interface,
                                            "reason": reason, "bytes": int(nbytes), "detail": detail})
        del self.data["counter_events"][:-EVENTS_KEPT]
        self.urgent = True

    def add(self, name, rx, tx, when, counted=True, elapsed=None):
        """Credit bytes to a counter for the `elapsed` seconds up to local time `when`.

        Counted bytes go into the days toward the cap, except the share that fell inside a free window,
        which goes into the free days; totals get everything."""
        if not rx and not tx:
            return
        share = self.free_share(when.timestamp() - (elapsed or 1.0), when.timestamp()) if counted else 0.0
        free_rx, free_tx = round(rx * share), round(tx * share)
        if free_rx or free_tx:
            entry = self.data.setdefault("free", {}).setdefault(when.date().isoformat(), {}).setdefault(name, [0, 0])
            entry[0] += free_rx
            entry[1] += free_tx
        for key, table in ((when.date().isoformat(), "days"), (when.strftime("%Y-%m-%dT%H"), "hours")):
            if not counted or (rx == free_rx and tx == free_tx):
                break
            entry = self.data[table].setdefault(key, {}).setdefault(name, [0, 0])
            entry[0] += rx - free_rx
            entry[1] += tx - free_tx
        total = self.data["totals"].setdefault(name, [0, 0])
        total[0] += rx
        total[1] += tx

    def resume(self, counters, boot_id, btime, boottime_s, when, names, link_bps, counts=True):
        """First sample after start: count what happened to `names` while we were not running."""
        cp = self.data.get("checkpoint")
        if cp and self._rebooted(cp["counters"], counters, boot_id, btime):
            for name in names:  # everything since boot is new traffic
                if name in counters:
                    rx, tx = counters[name]
                    self.add(name, rx, tx, when, counts)
                    self.event(when, name, "reboot", rx + tx, "counted the counters since boot")
        elif cp:
            elapsed = max(boottime_s - cp["boottime_s"], 1.0) if cp.get("boottime_s") is not None else None
            gap = self.step(counters, cp["counters"], elapsed, when, names, link_bps, None if counts else set())
            if gap:
                self.event(when, "*", "gap", gap, "counted the traffic while the collector was not running")
        self.data["boot_id"], self.data["btime"] = boot_id, btime

    def _rebooted(self, before, now, boot_id, btime):
        """The kernel's boot_id says; without one, a moved btime counts only with a counter that went down."""
        known = self.data.get("boot_id")
        if known and boot_id:
            return known != boot_id
        moved = self.data.get("btime") is None or abs(self.data["btime"] - btime) >= BTIME_TOLERANCE_S
        went_down = any(n < o for name, pair in before.items() if name in now for o, n in zip(pair, now[name]))
        return moved and went_down

    def step(self, counters, previous, elapsed_s, when, names, link_bps, counted=None, restarted=(), wide=()):
        """Credit `names` with the change from previous to counters; return bytes credited.

        elapsed_s is seconds since `previous` (a number, a {name: seconds} dict, or None for unknown);
        link_bps(name) is the link's bytes/s, None when unknown; counted: the names that count toward
        the cap (default: all); restarted: counters known to have started again from zero (a router's
        reboot); wide: counters known to be 64-bit.
        """
        credited = 0
        wide = set(self.data["wide"]) | set(wide)
        for name in names:
            if name not in counters or name not in previous:
                continue
            elapsed = elapsed_s.get(name) if isinstance(elapsed_s, dict) else elapsed_s
            deltas = []
            for direction, old, new in zip(("rx", "tx"), previous[name], counters[name]):
                if name in restarted and new < old:
                    d, reason = new, "reset"
                else:
                    d, reason = countersmod.delta(old, new, name in wide, elapsed, link_bps(name))
                if reason:
                    self.event(when, name, reason, d if reason != "implausible" else new - old,
                               f"{direction} {old} -> {new}")
                deltas.append(d)
            self.add(name, deltas[0], deltas[1], when, counted is None or name in counted, elapsed)
            credited += deltas[0] + deltas[1]
        seen_wide = {n for n, pair in counters.items() if max(pair) >= countersmod.U32}
        if not seen_wide <= wide:
            self.data["wide"] = sorted(wide | seen_wide)
        return credited

    def checkpoint(self, counters, boottime_s, when):
        self.data["checkpoint"] = {"at": when.isoformat(timespec="seconds"), "boottime_s": boottime_s,
                                   "counters": {k: list(v) for k, v in counters.items()}}

    def prune(self, today):
        oldest_day = (today - timedelta(days=DAYS_KEPT)).isoformat()
        for table in (self.data["days"], self.data.get("free", {})):
            for day in [d for d in table if d < oldest_day]:
                del table[day]
        hours = sorted(self.data["hours"])
        for hour in hours[:-HOURS_KEPT]:
            del self.data["hours"][hour]

    def alerts_due(self, summary, thresholds, when):
        """The alert to send now, if any: one naming the highest threshold crossed since the last.

        A threshold fires once per cycle, and is armed again when usage falls below it (a raised
        cap, a lower ISP reading); several crossed at once make one alert.
        """
        start, pct = summary["start"], summary["percent"]
        state = self.data.get("alert_fired")
        if not isinstance(state, dict) or state.get("cycle_start") != start:
            state = {"cycle_start": start, "percent": sorted({p for a in self.data["alerts"] if a.get("cycle_start") == start
                                                              for p in a.get("covers", [a.get("percent")])})}
        fired = [p for p in state["percent"] if isinstance(p, (int, float)) and p <= pct]
        due = sorted(p for p in thresholds if p <= pct and p not in fired)
        new = []
        if due:
            at = when.isoformat(timespec="seconds")
            new.append({"id": f"{start}:{due[-1]}:{at}", "cycle_start": start, "percent": due[-1], "covers": due,
                        "at": at, "used_bytes": summary["used_bytes"], "cap_bytes": summary["cap_bytes"]})
        self.data["alert_fired"] = {"cycle_start": start, "percent": sorted(fired + due)}
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
