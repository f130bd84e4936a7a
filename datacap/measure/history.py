"""history.json: every finished test, the newest KEPT, with its verdict; the format and its readers.

Writers (both under FileLock(history.json.lock), read-modify-write):
- the downloader appends its own session once it has ended (`append`, from measure/session.py);
- the server empties the file on a confirmed `DELETE /api/history` (`clear`). This is the one
  file with two writers: a deletion the user asked for cannot wait for a downloader to run, and
  the lock makes the two moves exclusive, so neither loses the other's change.

Readers take no lock (`Reader`, `normalize`): a missing or damaged file is an empty history.
"""
import logging
import numbers
import os
import time
from pathlib import Path

import filelock

from datacap import store

log = logging.getLogger(__name__)

NAME = "history.json"
KEPT = 500  # tests
POINTS_KEPT = 240  # speed points per test, for the report's charts
POINTS_TESTS = 50  # only the newest tests keep their points: the file stays well under a megabyte
LOCK_TIMEOUT_S = 10.0
EVENT_KINDS = ("throttle", "outage", "congestion", "burst")


def lock(data_dir):
    return filelock.FileLock(str(Path(data_dir) / (NAME + ".lock")), timeout=LOCK_TIMEOUT_S)


def thin(points, kept=POINTS_KEPT):
    """At most `kept` points, evenly spread, the last one always kept; each as [t, mbps, bytes]."""
    step = max(1, -(-len(points) // kept))
    chosen = points[::step]
    if points and chosen[-1] is not points[-1]:
        chosen = chosen[:-1] + [points[-1]] if len(chosen) >= kept else chosen + [points[-1]]
    return [[p["t"], p["mbps"], p["bytes"], p["time"]] for p in chosen]


def _read_for_update(path):
    """The stored items; a damaged file is set aside (history.json.bad), never silently overwritten."""
    doc = store.read_json(path)
    if doc is None and path.exists() and path.stat().st_size:
        os.replace(path, path.with_name(NAME + ".bad"))
        log.error("%s was unreadable; kept as %s.bad, starting a new history", path, NAME)
    return items(doc)


def append(data_dir, record):
    """Add one finished test (the downloader's call); older ones beyond KEPT drop off."""
    path = Path(data_dir) / NAME
    with lock(data_dir):
        found = [r for r in _read_for_update(path) if r["id"] != record["id"]] + [record]
        found = found[-KEPT:]
        for r in found[:-POINTS_TESTS]:
            r["points"] = []
        store.write_json_atomic(path, {"tests": found, "updated_at": time.time()})


def clear(data_dir):
    """Forget every kept test (the server's call, on a confirmed DELETE); returns how many there were."""
    path = Path(data_dir) / NAME
    with lock(data_dir):
        n = len(items(store.read_json(path)))
        store.write_json_atomic(path, {"tests": [], "updated_at": time.time()})
    return n


# -- the format ------------------------------------------------------------------
_num = (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool))
_str = (lambda v: isinstance(v, str))
_opt = (lambda check: (lambda v: v is None or check(v)))
_list = (lambda v: isinstance(v, list))

# key: (default, check). One test as stored and as /api/history serves it.
FIELDS = {
    "id": (None, _str), "status": ("stopped", _str), "reason": (None, _opt(_str)), "verdict": ("", _str),
    "start": (None, _opt(_str)), "end": (None, _opt(_str)), "duration_s": (0.0, _num),
    "total_bytes": (0, _num), "total_gb": (0.0, _num), "streams": (None, _opt(_num)), "urls": ([], _list),
    "baseline_mbps": (None, _opt(_num)), "avg_mbps": (0.0, _num), "peak_mbps": (0.0, _num),
    "threshold_percent": (None, _opt(_num)), "throttled": (False, lambda v: isinstance(v, bool)),
    "burst": (None, _opt(lambda v: isinstance(v, dict))), "events": ([], _list),
    "cycle_gb_at_start": (None, _opt(_num)), "cycle_gb_at_end": (None, _opt(_num)),
    "url_errors": ([], _list), "points": ([], _list), "line": (None, _opt(_str)),
}


def normalize_test(raw):
    """One test with every field of its type, or None when it has no id."""
    if not isinstance(raw, dict) or not _str(raw.get("id")):
        return None
    out = {}
    for key, (default, check) in FIELDS.items():
        value = raw.get(key, default)
        out[key] = value if check(value) else (list(default) if isinstance(default, list) else default)
    out["events"] = [e for e in out["events"] if isinstance(e, dict) and e.get("kind") in EVENT_KINDS]
    out["url_errors"] = [e for e in out["url_errors"] if isinstance(e, dict)]
    out["points"] = [p for p in out["points"] if isinstance(p, list) and len(p) == 4
                     and all(_num(x) for x in p[:3]) and _str(p[3])]
    return out


def items(doc):
    """The kept tests, oldest first, normalized."""
    found = (doc or {}).get("tests")
    return [t for t in map(normalize_test, found) if t] if isinstance(found, list) else []


class Reader:
    """The server's view: parsed once per change of the file."""

    def __init__(self, data_dir):
        self._file = store.CachedReader(Path(data_dir) / NAME)
        self._cache = (None, [])

    def tests(self):
        """Newest first."""
        raw = self._file.read()
        if raw is not self._cache[0]:
            self._cache = (raw, list(reversed(items(raw))))
        return self._cache[1]

    def get(self, test_id):
        return next((t for t in self.tests() if t["id"] == test_id), None)


# -- one finished test ------------------------------------------------------------
def record(snap, end, cycle_gb_at_start=None, cycle_gb_at_end=None):
    """The history entry for a session's final snapshot (measure/session.py's snapshot())."""
    events = []
    for e in snap["events"]:
        e = dict(e)
        if isinstance(e.get("at_bytes"), int) and "at_gb" not in e:
            e["at_gb"] = round(e["at_bytes"] / 1e9, 4)
        events.append(e)
    out = {
        "id": snap["session_id"], "status": snap["status"], "reason": snap["reason"],
        "start": snap["session_start"], "end": end, "duration_s": snap["session_duration"],
        "total_bytes": snap["total_bytes"], "total_gb": snap["total_gb"], "streams": snap["streams"],
        "urls": snap["urls"], "baseline_mbps": snap["baseline_speed"], "avg_mbps": snap["avg_speed"],
        "peak_mbps": snap["peak_speed"], "threshold_percent": snap["threshold_percent"],
        "throttled": any(e["kind"] == "throttle" for e in events),
        "burst": next((e for e in events if e["kind"] == "burst"), None), "events": events,
        "cycle_gb_at_start": cycle_gb_at_start, "cycle_gb_at_end": cycle_gb_at_end,
        "url_errors": snap.get("url_errors") or [], "line": snap.get("line"),
        "points": thin(snap["history"] + [p for p in snap["data_points"]
                                          if not snap["history"] or p["t"] > snap["history"][-1]["t"]]),
    }
    out["verdict"] = verdict(out)
    return out


def _dur(s):
    s = round(s or 0)
    return f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def _throttle_text(throttles):
    """The first throttle, each further step of it ("then after ..."), and whether the speed came back."""
    e = throttles[0]
    if e.get("from_start") and isinstance(e.get("text"), str):  # the refill check's words (measure/refill.py)
        text = e["text"][:1].upper() + e["text"][1:]
    else:
        drop = 100 * (1 - e["throttled_mbps"] / e["baseline_mbps"]) if e.get("baseline_mbps") else 0
        text = (f"Throttled after {e['at_gb']:.2f} GB of this test: {e['baseline_mbps']:.1f} → "
                f"{e['throttled_mbps']:.1f} Mbit/s ({drop:.0f} % slower)")
    if e.get("at_cycle_gb") is not None and e["at_cycle_gb"] >= e["at_gb"]:  # else the count missed the test
        text += f", at {e['at_cycle_gb']:.2f} GB into the billing cycle"
    last = e
    for step in throttles[1:]:
        if not step.get("step") or step.get("start") != last.get("end"):
            break
        text += (f", then after {step['at_gb']:.2f} GB: {step['baseline_mbps']:.1f} → {step['throttled_mbps']:.1f} "
                 f"Mbit/s")
        last = step
    text += "; the speed came back later" if last.get("end") else "; still slow when the test ended"
    separate = sum(1 for x in throttles if not x.get("step"))
    return text + (f" ({separate} throttles in all)" if separate > 1 else "")


def verdict(t):
    """The test's result in one sentence, the way a user would tell their ISP (naming the line, when lines are
    configured)."""
    text = _verdict(t)
    return f"{t['line']}: {text}" if t.get("line") else text


def _verdict(t):
    throttles = [e for e in t["events"] if e["kind"] == "throttle"]
    outages = [e for e in t["events"] if e["kind"] == "outage"]
    if not t["total_bytes"]:
        return ("No test server reachable — is the internet down?" if t["url_errors"]
                else f"No data was downloaded ({t['reason'] or t['status']}).")
    if throttles:
        return _throttle_text(throttles) + "."
    base = f" at a steady {t['baseline_mbps']:.1f} Mbit/s" if t["baseline_mbps"] else ""
    text = f"No throttling in {t['total_gb']:.2f} GB over {_dur(t['duration_s'])}{base}"
    burst = t["burst"]
    if burst and isinstance(burst.get("text"), str):
        text += "; " + (burst["text"] if burst.get("came_back") else "initial burst: " + burst["text"])
    if outages:
        down = sum(e.get("duration_s") or 0 for e in outages)
        text += f"; {len(outages)} outage{'s' if len(outages) > 1 else ''} ({_dur(down)} without data)"
    return text + "."
