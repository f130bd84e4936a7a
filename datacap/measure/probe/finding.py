"""Passive throttle finding: a lasting step down across a cycle's probes, told against the cycle's usage.

Only probes taken on a quiet link that settled are judged (one cut short by its byte ceiling read
13 % low at 80 Mbit/s; measure/probe/budget.py paces probes so that each can settle). A probe is
low when it is below (1 - throttle_threshold_percent) of the level before (the median of the last
LEVEL_PROBES normal probes); CONFIRM low probes in a row make an onset, CONFIRM probes back above that line a lift. A
single low probe is a dip and is forgotten. The onset lies between the last normal probe's end and
the first low probe's end: its mark is the middle of that bracket of cycle usage (and of time).
Ids name the cycle and the first low probe, so they stay the same however often this is re-run.
"""
from datetime import datetime, timedelta
from statistics import median

CONFIRM = 2
LEVEL_PROBES = 5


def _gb(nbytes):
    gb = nbytes / 1e9
    return f"{gb:.0f}" if gb >= 100 else f"{gb:.1f}" if gb >= 10 else f"{gb:.2f}"


def _mbit(v):
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def _day(iso):
    t = datetime.fromisoformat(iso).astimezone()
    return f"{t:%b} {t.day}"


def _end(p):
    return datetime.fromisoformat(p["time"]) + timedelta(seconds=p.get("seconds") or 0)


def _mid_time(a, b):
    ta, tb = _end(a), _end(b)
    return (ta + (tb - ta) / 2).isoformat(timespec="seconds")


def _mark(before, after):
    """The bracket from the end of the last probe before a step to the end of the first after it (the
    step may come while that probe runs; each probe's own bytes crossed the link too), and its middle."""
    lo, hi = before["cycle_used_bytes"] + before["bytes"], after["cycle_used_bytes"] + after["bytes"]
    lo = min(lo, hi)
    return {"cycle_bytes": int((lo + hi) / 2), "bracket_bytes": [int(lo), int(hi)],
            "time": _mid_time(before, after)}


def _judged(probes):
    return [p for p in probes if p.get("quiet") and p.get("mbps") and p.get("settled")]


def _onset(cycle_start, prev, lows, before_mbps):
    mark = _mark(prev, lows[0])
    during = median(p["mbps"] for p in lows)
    return {
        "id": f"{cycle_start}:{lows[0]['id']}", "kind": "throttle", "cycle_start": cycle_start,
        "since_cycle_bytes": mark["cycle_bytes"], "since_cycle_gb": round(mark["cycle_bytes"] / 1e9, 3),
        "bracket_bytes": mark["bracket_bytes"], "since_time": mark["time"],
        "before_mbps": round(before_mbps, 3), "during_mbps": round(during, 3),
        "confirmed_by": lows[-1]["id"], "confirmed_at": lows[-1]["time"], "probes": len(lows), "lifted": None,
    }


def _lift(finding, prev, highs):
    mark = _mark(prev, highs[0])
    after = median(p["mbps"] for p in highs)
    finding["lifted"] = {
        "id": finding["id"] + ":lift", "at_cycle_bytes": mark["cycle_bytes"],
        "at_cycle_gb": round(mark["cycle_bytes"] / 1e9, 3), "bracket_bytes": mark["bracket_bytes"],
        "time": mark["time"], "after_mbps": round(after, 3), "confirmed_by": highs[-1]["id"],
        "confirmed_at": highs[-1]["time"],
    }


def _describe(f):
    """The sentences a person reads, from the final figures."""
    f["text"] = (f"Since ~{_gb(f['since_cycle_bytes'])} GB into this cycle ({_day(f['since_time'])}), probes show "
                 f"{_mbit(f['during_mbps'])} Mbit/s; before, {_mbit(f['before_mbps'])} Mbit/s")
    lift = f["lifted"]
    if lift:
        lift["text"] = (f"Since ~{_gb(lift['at_cycle_bytes'])} GB into this cycle ({_day(lift['time'])}), probes "
                        f"show {_mbit(lift['after_mbps'])} Mbit/s again; throttled to {_mbit(f['during_mbps'])} "
                        f"Mbit/s from ~{_gb(f['since_cycle_bytes'])} GB")
    return f


def find(probes, threshold_percent):
    """The findings of one cycle's probes (oldest first): each onset, with its lift once there is one."""
    keep = 1 - threshold_percent / 100
    found, normal, lows, highs, open_ = [], [], [], [], None
    prev = None  # the last probe of the level before the candidate step
    for p in _judged(probes):
        if open_ is None:
            level = median(normal[-LEVEL_PROBES:]) if normal else None
            if level is not None and p["mbps"] < keep * level:
                lows.append(p)
                if len(lows) == CONFIRM:
                    open_ = _onset(probes[0]["cycle_start"], prev, lows, level)
                    found.append(open_)
                    normal, highs = [], []
                continue
            normal.append(p["mbps"])
            lows, prev = [], p
        else:
            if p["mbps"] >= keep * open_["before_mbps"]:
                highs.append(p)
                if len(highs) == CONFIRM:
                    _lift(open_, prev, highs)
                    normal, lows, prev, open_ = [h["mbps"] for h in highs], [], highs[-1], None
                continue
            lows.append(p)
            open_["during_mbps"] = round(median(x["mbps"] for x in lows), 3)
            open_["probes"] = len(lows)
            highs, prev = [], p
    return [_describe(f) for f in found]
