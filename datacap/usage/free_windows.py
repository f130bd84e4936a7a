"""Free windows: local-time spans (an ISP's free night hours) whose bytes never count toward the cap.

    "free_windows": [{"start": "23:00", "end": "07:00", "weekdays": ["sat", "sun"]}]

A window that ends at or before its start crosses midnight; its weekdays are the days it starts on.
Local time, with the zone's DST rules (a window across a DST change counts real hours).
"""
import time as _time
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _instant(d, hhmm, tz):
    """Epoch seconds of local time hh:mm on day d."""
    at = datetime.combine(d, time(*map(int, hhmm.split(":"))))
    if isinstance(tz, ZoneInfo):
        return at.replace(tzinfo=tz).timestamp()
    return _time.mktime(at.timetuple())  # the system's local rules


def _aware(ts, tz):
    return datetime.fromtimestamp(ts, tz) if isinstance(tz, ZoneInfo) else datetime.fromtimestamp(ts).astimezone()


def spans(windows, first, last, tz):
    """(start, end) epoch seconds of every window opening on a day from first to last."""
    out = []
    d = first
    while d <= last:
        for w in windows:
            if w.get("weekdays") and WEEKDAYS[d.weekday()] not in w["weekdays"]:
                continue
            a = _instant(d, w["start"], tz)
            end_day = d if w["end"] > w["start"] else d + timedelta(days=1)
            out.append((a, _instant(end_day, w["end"], tz)))
        d += timedelta(days=1)
    return out


def free_share(windows, a, b, tz):
    """The share of the interval [a, b] (epoch seconds) that falls inside free windows."""
    if not windows or b <= a:
        return 0.0
    first = datetime.fromtimestamp(a).date() - timedelta(days=1)
    last = datetime.fromtimestamp(b).date()
    inside = sum(max(0.0, min(b, y) - max(a, x)) for x, y in spans(windows, first, last, tz))
    return min(1.0, inside / (b - a))


def next_window(windows, now):
    """(start, end) as aware datetimes of the free window open now or next, None without windows."""
    if not windows:
        return None
    ts = now.timestamp()
    found = sorted(s for s in spans(windows, now.date() - timedelta(days=1), now.date() + timedelta(days=7), now.tzinfo)
                   if s[1] > ts)
    return tuple(_aware(x, now.tzinfo) for x in found[0]) if found else None


def _hhmm(v):
    try:
        h, m = v.split(":")
        return len(h) == 2 and len(m) == 2 and 0 <= int(h) <= 23 and 0 <= int(m) <= 59
    except (AttributeError, ValueError):
        return False


def _week_spans(windows, d):
    """(start minute, end minute, index) in the week of each window opening on weekday d."""
    out = []
    for i, w in enumerate(windows):
        if w.get("weekdays") and WEEKDAYS[d] not in w["weekdays"]:
            continue
        a = d * 1440 + int(w["start"][:2]) * 60 + int(w["start"][3:])
        b = d * 1440 + int(w["end"][:2]) * 60 + int(w["end"][3:])
        b += 1440 if w["end"] <= w["start"] else 0
        out += [(a, b, i), (a - 7 * 1440, b - 7 * 1440, i)] if b > 7 * 1440 else [(a, b, i)]  # Sun night: Mon too
    return out


def check(windows):
    """The problem with a free_windows setting, one line naming the key; None when good."""
    if not isinstance(windows, list):
        return "free_windows: must be a list of {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}"
    for i, w in enumerate(windows):
        key = f"free_windows[{i + 1}]"
        if not isinstance(w, dict) or set(w) - {"start", "end", "weekdays"}:
            return f'{key}: must be {{"start": "HH:MM", "end": "HH:MM", "weekdays": [...]}} (optional weekdays)'
        for part in ("start", "end"):
            if not _hhmm(w.get(part)):
                return f"{key}.{part}: must be a local time \"HH:MM\", got {w.get(part)!r}"
        if w["start"] == w["end"]:
            return f"{key}: start and end are the same time (a whole day free? use 00:00 to 23:59)"
        days = w.get("weekdays")
        if days is not None and (not isinstance(days, list) or not days or set(days) - set(WEEKDAYS)):
            return f"{key}.weekdays: must be a non-empty list of {', '.join(WEEKDAYS)}"
    week = [(d, s) for d in range(7) for s in _week_spans(windows, d)]
    for (d1, (a1, b1, i1)), (d2, (a2, b2, i2)) in ((x, y) for x in week for y in week if x[1][2] < y[1][2]):
        if a1 < b2 and a2 < b1:
            return f"free_windows[{i2 + 1}]: overlaps window {i1 + 1}"
    return None
