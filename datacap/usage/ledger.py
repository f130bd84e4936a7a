"""The ledger in memory (usage/ledger_file.py is its format): counter deltas credited to lines and days.

Counter logic is our own (not psutil's nowrap, which forgets across restarts; see counters.py).
Every wrap, reset, discard, reboot and gap is a counter event. A reboot is a new kernel boot_id
(btime moves when NTP steps the clock, so it is only the fallback, corroborated by a counter
that went down). Every counter's bytes go to its totals; those of a counter that counts toward a
line also go to that line's days and hours, or to its free days inside the plan's free windows.
"""
import logging
from datetime import datetime, timedelta

from datacap.usage import counters as countersmod
from datacap.usage import ledger_file

log = logging.getLogger("collector")

DAYS_KEPT = 430  # more than 13 months
HOURS_KEPT = 72
EVENTS_KEPT = 200
ALERTS_KEPT = 200
BTIME_TOLERANCE_S = 5.0


class Ledger:
    """In-memory view of usage.json; the collector is its only writer."""

    def __init__(self, data):
        self.data = data
        self.urgent = False  # something a user reviews (a counter event) waits for the next flush
        self.free_share = {}  # line -> share of [a, b] (epoch s) inside its plan's free windows

    def line(self, name):
        return self.data["lines"][name]

    def open_lines(self, names, when):
        """Tables for every configured line; the first line takes over the history of one no line claims
        (version 1's "Internet", or a line renamed in the settings)."""
        lines = self.data["lines"]
        orphans = [n for n in lines if n not in names]
        if names and names[0] not in lines and len(orphans) == 1:
            lines[names[0]] = lines.pop(orphans[0])
            log.info("line %r continues the figures counted as %r", names[0], orphans[0])
        for name in names:
            lines.setdefault(name, ledger_file.empty_line(when))

    def event(self, when, interface, reason, nbytes, detail=""):
        self.data["counter_events"].append({"time": when.isoformat(timespec="seconds"), "interface": interface,
                                            "reason": reason, "bytes": int(nbytes), "detail": detail})
        del self.data["counter_events"][:-EVENTS_KEPT]
        self.urgent = True

    def add(self, name, rx, tx, when, line=None, elapsed=None):
        """Credit bytes of counter `name` for the `elapsed` seconds up to local time `when`.

        Totals get everything; with a line, its days and hours get the bytes outside its free windows
        and its free days the rest."""
        if not rx and not tx:
            return
        total = self.data["totals"].setdefault(name, [0, 0])
        total[0] += rx
        total[1] += tx
        if line is None:
            return
        share = self.free_share.get(line, lambda a, b: 0.0)(when.timestamp() - (elapsed or 1.0), when.timestamp())
        free_rx, free_tx = round(rx * share), round(tx * share)
        tables = self.line(line)
        if free_rx or free_tx:
            _credit(tables["free"], when.date().isoformat(), name, free_rx, free_tx)
        if rx - free_rx or tx - free_tx:
            _credit(tables["days"], when.date().isoformat(), name, rx - free_rx, tx - free_tx)
            _credit(tables["hours"], when.strftime("%Y-%m-%dT%H"), name, rx - free_rx, tx - free_tx)

    def resume(self, counters, boot_id, btime, boottime_s, when, names, link_bps, line_of):
        """First sample after start: count what happened to `names` while we were not running."""
        cp = self.data.get("checkpoint")
        if cp and self._rebooted(cp["counters"], counters, boot_id, btime):
            for name in names:  # everything since boot is new traffic
                if name in counters:
                    rx, tx = counters[name]
                    self.add(name, rx, tx, when, line_of(name))
                    self.event(when, name, "reboot", rx + tx, "counted the counters since boot")
        elif cp:
            elapsed = max(boottime_s - cp["boottime_s"], 1.0) if cp.get("boottime_s") is not None else None
            gap = self.step(counters, cp["counters"], elapsed, when, names, link_bps, line_of)
            if gap:
                self.event(when, "*", "gap", gap, "counted the traffic while the collector was not running")
        self.data["boot_id"], self.data["btime"] = boot_id, btime

    def rebooted_since_checkpoint(self, boot_id):
        known = self.data.get("boot_id")
        return bool(known and boot_id and known != boot_id)

    def _rebooted(self, before, now, boot_id, btime):
        """The kernel's boot_id says; without one, a moved btime counts only with a counter that went down."""
        known = self.data.get("boot_id")
        if known and boot_id:
            return known != boot_id
        moved = self.data.get("btime") is None or abs(self.data["btime"] - btime) >= BTIME_TOLERANCE_S
        went_down = any(n < o for name, pair in before.items() if name in now for o, n in zip(pair, now[name]))
        return moved and went_down

    def step(self, counters, previous, elapsed_s, when, names, link_bps, line_of=lambda name: None,
             restarted=(), wide=(), credits=None, overlap=None):
        """Credit `names` with the change from previous to counters; return bytes credited.

        elapsed_s is seconds since `previous` (a number, a {name: seconds} dict, or None for unknown);
        link_bps(name) is the link's bytes/s, None when unknown; line_of(name) the line a counter counts
        toward (None: totals only); restarted: counters known to have started again from zero (a router's
        reboot); wide: counters known to be 64-bit. credits, when given, gets {name: (rx, tx)} counted
        toward a line; overlap {name: (rx, tx)}: bytes another counter has counted already (a handover),
        taken off this counter's line and from the dict.
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
            rx, tx = deltas
            if overlap and name in overlap:
                o_rx, o_tx = min(rx, overlap[name][0]), min(tx, overlap[name][1])
                overlap[name] = (overlap[name][0] - o_rx, overlap[name][1] - o_tx)
                self.add(name, o_rx, o_tx, when, None, elapsed)
                rx, tx = rx - o_rx, tx - o_tx
            self.add(name, rx, tx, when, line_of(name), elapsed)
            if credits is not None and line_of(name) is not None:
                credits[name] = (rx, tx)
            credited += deltas[0] + deltas[1]
        seen_wide = {n for n, pair in counters.items() if max(pair) >= countersmod.U32}
        if not seen_wide <= wide:
            self.data["wide"] = sorted(wide | seen_wide)
        return credited

    def merge_import(self, item):
        """An import (usage/imports.py) into its line, once: days before the first day datacap counted the line
        whole, that day less what datacap counted of it, later days not at all."""
        done = self.data.setdefault("imported", [])
        line = self.data["lines"].get(item.get("line"))
        if item["id"] in done or line is None:
            return False
        since = line.setdefault("counted_since", line.get("monitoring_since"))  # ours, whatever imports say
        first_day = datetime.fromisoformat(since).date().isoformat() if since else None
        counter = f"{item['source']}:{item['interface']}"
        for day, (rx, tx) in sorted(item["days"].items()):
            if first_day is not None and day > first_day:
                continue
            entry = line["days"].setdefault(day, {})
            entry.pop(counter, None)  # a day imported again replaces the earlier import
            if day == first_day:
                mine = [sum(v[k] for v in entry.values()) for k in (0, 1)]
                rx, tx = max(0, rx - mine[0]), max(0, tx - mine[1])
            if rx or tx:
                entry[counter] = [rx, tx]
        if item.get("created") and (line.get("monitoring_since") or "9") > item["created"]:
            line["monitoring_since"] = datetime.fromisoformat(item["created"]).astimezone().isoformat(timespec="seconds")
        done.append(item["id"])
        self.urgent = True
        return True

    def checkpoint(self, counters, readings, boottime_s, when):
        """The raw counters the totals so far correspond to; readings: {counter: {"t", "uptime"}} of routers."""
        self.data["checkpoint"] = {"at": when.isoformat(timespec="seconds"), "boottime_s": boottime_s,
                                   "counters": {k: list(v) for k, v in counters.items()}, "readings": readings}

    def add_own(self, line, when, what, nbytes):
        """Bytes of datacap's own use besides its tests and probes (`what`: "telemetry"), booked to a line's day."""
        day = self.line(line)["own"].setdefault(when.date().isoformat(), {})
        day[what] = day.get(what, 0) + int(nbytes)

    def prune(self, today):
        oldest_day = (today - timedelta(days=DAYS_KEPT)).isoformat()
        for line in self.data["lines"].values():
            for table in (line["days"], line["free"], line["own"]):
                for day in [d for d in table if d < oldest_day]:
                    del table[day]
            for hour in sorted(line["hours"])[:-HOURS_KEPT]:
                del line["hours"][hour]

    def alerts_due(self, line, summary, thresholds, when):
        """The alert to send now for a line, if any: one naming the highest threshold crossed since the last.

        A threshold fires once per cycle, and is armed again when usage falls below it (a raised
        cap, a lower ISP reading); several crossed at once make one alert.
        """
        tables = self.line(line)
        start, pct = summary["start"], summary["percent"]
        state = tables.get("alert_fired")
        if not isinstance(state, dict) or state.get("cycle_start") != start:
            state = {"cycle_start": start, "percent": sorted({p for a in tables["alerts"] if a.get("cycle_start") == start
                                                              for p in a.get("covers", [a.get("percent")])})}
        fired = [p for p in state["percent"] if isinstance(p, (int, float)) and p <= pct]
        due = sorted(p for p in thresholds if p <= pct and p not in fired)
        new = []
        if due:
            at = when.isoformat(timespec="seconds")
            new.append({"id": f"{start}:{due[-1]}:{at}", "line": line, "cycle_start": start, "percent": due[-1],
                        "covers": due, "at": at, "used_bytes": summary["used_bytes"], "cap_bytes": summary["cap_bytes"],
                        "expired": summary["expired"]})
        tables["alert_fired"] = {"cycle_start": start, "percent": sorted(fired + due)}
        tables["alerts"].extend(new)
        del tables["alerts"][:-ALERTS_KEPT]
        return new


def _credit(table, key, name, rx, tx):
    entry = table.setdefault(key, {}).setdefault(name, [0, 0])
    entry[0] += rx
    entry[1] += tx

