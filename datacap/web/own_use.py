"""datacap's own use of a line: the bytes of its tests and probes, from the files that keep them, and
what the collector booked to the line's days besides (a fleet agent's telemetry: usage.json's "own").

Tests (history.json, and the one running in downloader.json) and probes (probes.json) say which line they
ran over (a record from before lines: the first). Their payload is what they counted; the line carried
it with its headers (measure/cap_guard.py's WIRE_PER_PAYLOAD), which is what the counters see.
"""
from datetime import datetime

from datacap.measure.cap_guard import WIRE_PER_PAYLOAD
from datacap.measure.probe import file as probe_file
from datacap.usage import ledger_file


def _ts(iso):
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def records(views, line, first):
    """[(epoch seconds, bytes on the wire)] of the tests and probes that ran over `line`, and of the days'
    telemetry the collector booked to it."""
    out, seen = [], set()
    live = views.downloader.read()
    tests = list(views.history.tests()) + ([live] if live.get("session_id") else [])
    for t in tests:
        key = t.get("id") or t.get("session_id")
        at = _ts(t.get("start") or t.get("session_start"))
        if key in seen or at is None or (t.get("line") or first) != line:
            continue
        seen.add(key)
        out.append((at, int(WIRE_PER_PAYLOAD * (t.get("total_bytes") or 0))))
    for p in probe_file.reader(views.data_dir).read()["probes"]:
        at = _ts(p.get("time"))
        if at is not None and (p.get("line") or first) == line:
            out.append((at, int(WIRE_PER_PAYLOAD * p["bytes"])))
    for day, booked in (ledger_file.line_of(views.usage.read(), line).get("own") or {}).items():
        at = _ts(day)  # the day's local midnight: inside the cycle the day is in
        if at is not None:
            out.append((at, sum(booked.values())))
    return out
