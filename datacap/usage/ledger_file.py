"""usage.json, the durable ledger: its format, loading with repair, the live copy, and its readers.

    {"version": 2, "id", "flushes", "boot_id", "btime", "updated_at", "counted",
     "checkpoint": {"at", "boottime_s", "counters": {counter: [rx, tx]},
                    "readings": {counter: {"t": boot-clock seconds, "uptime": s or null}}},
     "totals": {counter: [rx, tx]}, "wide": [counter], "counter_events": [...], "promoted": null | {...},
     "telemetry": null | {the fleet agent's counters at the last flush},
     "lines": {line: {"days": {date: {counter: [rx, tx]}}, "hours": {...}, "free": {...},
                      "own": {date: {"telemetry": bytes}},  # datacap's own use besides its tests and probes
                      "alerts": [...], "alert_fired": {...}, "monitoring_since": ISO}}}

The collector (usage/ledger.py) is its only writer: to data/ once a minute and on what matters, and
every tick to a copy in the tmpfs runtime folder. A collector that restarts without a reboot (killed,
hung, a server restart) continues from that copy, so nothing counted since the last flush is counted
again or lost; the copy is taken only when it descends from the very flush on disk (same id and
flush count). Version 1 (one line, its tables at the top) is read as the line "Internet".
"""
import copy
import logging
import os
import time
import uuid
from datetime import datetime

from datacap import store

log = logging.getLogger("collector")

NAME = "usage.json"
COPY_NAME = "usage.live.json"
VERSION = 2
FIRST_LINE = "Internet"  # the one line of a config without `lines`, and where version 1 put its figures
LINE_TABLES = ("days", "hours", "free")
READ_ATTEMPTS = 5  # a transient read error (EIO, EACCES) is retried, never taken for corruption


def path(data_dir):
    return data_dir / NAME


def empty_line(when=None):
    return {"days": {}, "hours": {}, "free": {}, "own": {}, "alerts": [], "alert_fired": None,
            "monitoring_since": when.isoformat(timespec="seconds") if when else None}


def empty(when=None):
    return {"version": VERSION, "id": uuid.uuid4().hex, "flushes": 0, "boot_id": None, "btime": None,
            "checkpoint": None, "totals": {}, "counter_events": [], "wide": [], "promoted": None, "lines": {}}


def _pair(v):
    return isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)


def _table(t):
    return isinstance(t, dict) and all(isinstance(e, dict) and all(_pair(v) for v in e.values()) for e in t.values())


def _checkpoint(cp):
    return cp is None or (isinstance(cp, dict) and isinstance(cp.get("counters"), dict)
                          and all(_pair(v) for v in cp["counters"].values())
                          and (cp.get("boottime_s") is None or isinstance(cp["boottime_s"], (int, float))))


def _own(t):
    return isinstance(t, dict) and all(isinstance(e, dict) and all(isinstance(v, int) for v in e.values())
                                       for e in t.values())


def _line(x):
    return (isinstance(x, dict) and all(_table(x.get(t, {})) for t in LINE_TABLES) and _own(x.get("own", {}))
            and isinstance(x.get("alerts", []), list) and all(isinstance(a, dict) for a in x.get("alerts", [])))


def _common(d):
    return (isinstance(d.get("totals"), dict) and all(_pair(v) for v in d["totals"].values())
            and "checkpoint" in d and _checkpoint(d["checkpoint"]) and isinstance(d.get("counter_events"), list))


def valid(d):
    """A ledger we can trust enough to keep counting on: every field there and of its type."""
    if not isinstance(d, dict):
        return False
    if d.get("version") == 1:
        return (_common(d) and _table(d.get("days")) and _table(d.get("hours"))
                and isinstance(d.get("alerts"), list) and all(isinstance(a, dict) for a in d["alerts"]))
    return (d.get("version") == VERSION and _common(d) and isinstance(d.get("id"), str)
            and isinstance(d.get("flushes"), int) and isinstance(d.get("lines"), dict)
            and all(isinstance(k, str) and _line(v) for k, v in d["lines"].items()))


def _since_first_day(days):
    first = min(days, default=None)
    return datetime.fromisoformat(first).astimezone().isoformat(timespec="seconds") if first else None


def upgrade(d):
    """A valid ledger of any version as the current one (version 1's tables become the first line)."""
    if d.get("version") == 1:
        line = {"days": d.pop("days"), "hours": d.pop("hours"),
                "free": d.pop("free") if _table(d.get("free")) else {},
                "alerts": d.pop("alerts"), "alert_fired": d.pop("alert_fired", None),
                "monitoring_since": d.pop("monitoring_since", None)}
        d.update(version=VERSION, id=uuid.uuid4().hex, flushes=0, lines={FIRST_LINE: line})
    for key, default in (("boot_id", None), ("btime", None), ("promoted", None), ("telemetry", None)):
        d.setdefault(key, default)
    if not isinstance(d.get("wide"), list):
        d["wide"] = []
    for line in d["lines"].values():
        for key in (*LINE_TABLES, "own"):
            line.setdefault(key, {})
        line.setdefault("alerts", [])
        line.setdefault("alert_fired", None)
        if not isinstance(line.get("monitoring_since"), str):
            line["monitoring_since"] = _since_first_day(line["days"])
    return d


def _read(p):
    """The parsed file (None when it does not parse); OSError after READ_ATTEMPTS transient failures."""
    for attempt in range(READ_ATTEMPTS):
        try:
            with open(p, "rb") as f:
                raw = f.read()
            break
        except FileNotFoundError:
            raise
        except OSError as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise
            log.warning("cannot read %s (%s): retrying", p.name, exc.strerror or exc)
            time.sleep(0.2 * (attempt + 1))
    try:
        return store.parse_json(raw)
    except ValueError:
        return None


def _load_disk(p, now):
    """usage.json; a torn or incomplete one is moved aside and the last good copy (usage.json.bak) restored.

    A read error is not damage: it raises OSError, the collector exits and is restarted with back-off.
    """
    try:
        data = _read(p)
    except FileNotFoundError:
        return empty(now)
    if valid(data):
        return upgrade(data)
    aside = p.with_name(f"{p.name}.corrupt-{now.strftime('%Y%m%dT%H%M%S')}")
    os.replace(p, aside)
    try:
        backup = _read(p.with_name(p.name + ".bak"))
    except OSError:
        backup = None
    if valid(backup):
        log.error("usage.json was damaged: moved to %s, restored usage.json.bak", aside.name)
        return upgrade(backup)
    log.error("usage.json was damaged: moved to %s, no valid backup, starting a new ledger", aside.name)
    return empty(now)


def load(p, now, copy_path=None):
    """The ledger to continue from: the live copy when it descends from the flush on disk, else usage.json."""
    data = _load_disk(p, now)
    live = store.read_json(copy_path) if copy_path else None
    if (valid(live) and live.get("version") == VERSION and live.get("id") == data.get("id")
            and live.get("flushes") == data.get("flushes")):
        log.info("continuing from the live copy of the ledger (%s), newer than its last flush", live.get("saved_at"))
        return upgrade(live)
    return data


# -- readers -------------------------------------------------------------------------------------------

class Reader:
    """usage.json as the server reads it: parsed once per change, {} when missing."""

    def __init__(self, data_dir):
        self._file = store.CachedReader(path(data_dir))

    def read(self):
        d = self._file.read() or {}
        return upgrade(copy.deepcopy(d)) if d.get("version") == 1 and valid(d) else d  # until the first flush

    def line(self, name):
        return line_of(self.read(), name)


def epoch(iso):
    """Epoch seconds of a ledger's ISO time, None when it has none."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def line_of(doc, name):
    """One line's tables from a ledger or live document ({} when it has none); a document from before lines
    (its days at the top) is the one line's."""
    lines = (doc or {}).get("lines")
    if not isinstance(lines, dict):
        return doc or {}
    found = lines.get(name)
    return found if isinstance(found, dict) else {}


def _pairs(entry):
    """{counter: [rx, tx]} as the API shows it, skipping anything malformed."""
    return {n: {"rx_bytes": v[0], "tx_bytes": v[1]} for n, v in (entry or {}).items()
            if isinstance(v, list) and len(v) == 2}


def totals(doc):
    """All-time bytes per counter, counted or not."""
    return _pairs((doc or {}).get("totals"))


def daily(line, count, used_bytes):
    """Per-day rows of a line, oldest first; used_bytes(entry, count) is the cap's rule for a day."""
    days = (line or {}).get("days") or {}
    return [{"date": day, "used_bytes": used_bytes(v, count), "interfaces": _pairs(v)} for day, v in sorted(days.items())]


def hourly(line, count, used_bytes):
    hours = (line or {}).get("hours") or {}
    return [{"hour": h, "used_bytes": used_bytes(v, count)} for h, v in sorted(hours.items())]
