"""The cycle figure: everything datacap says about a line's cap, for the period containing now.

One function for every reader (the collector each tick, the API, the cap guard, the alerts), over
the line's days (from the collector's live file or its ledger), its plan, the ISP meter readings
and the top-ups. Pure: no files, no clock.
"""
from datetime import datetime, timedelta

from datacap.usage import adjustments as adjustmentsmod
from datacap.usage.cycles import local_at, midnight, used_bytes

MIN_PACE_WINDOW_S = 600.0  # a pace measured over less than this is taken over this long


def _ts(iso, default=None):
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return default


def _sum(days, first, end, count):
    """Bytes of the days from `first` up to (not including) `end` (dates)."""
    return sum(used_bytes(v, count) for d, v in days.items() if first.isoformat() <= d < end.isoformat())


def pace(counted, adj, monitored_from, now_ts, own=()):
    """The household's bytes per second over what datacap has watched: since the ISP reading if there is
    one, else since it started counting this cycle; datacap's own tests and probes (`own`: [(epoch s,
    bytes)]) left out, so one test does not make a month's projection."""
    since, base = monitored_from, 0
    if adj is not None and isinstance(adj.get("counted_bytes"), int):
        at = _ts(adj.get("at"))
        if at is not None and at >= monitored_from:
            since, base = at, adj["counted_bytes"]
    mine = sum(n for t, n in own if since <= t <= now_ts)
    return max(0, counted - base - mine) / max(now_ts - since, MIN_PACE_WINDOW_S)


def previous_use(days, plan, start, adjustments, since, tz, count):
    """(the previous period's use or None when unknown, its first day or None): known from the ISP's
    reading for it, or from datacap's own count when datacap watched the whole period."""
    before = plan.previous(start)
    if before is None:
        return None, None
    counted = _sum(days, before, start, count)
    adj = adjustmentsmod.active(adjustments, before)
    if adj is not None:
        return max(0, counted + adj["offset_bytes"]), before
    if since is None or since <= midnight(before, tz):  # None: a document from before it was recorded
        return counted, before
    return None, before


def summarize(doc, plan, count, now, adjustments=None, topups=None, own=()):
    """The figure for the period containing `now` (aware).

    doc: the line's {"days", "free" ({date: {counter: [rx, tx]}}), "monitoring_since" (ISO)}; own: datacap's
    own tests and probes on the line as [(epoch seconds, bytes)], shown and kept out of the pace.
    """
    days, free = (doc or {}).get("days") or {}, (doc or {}).get("free") or {}
    today, tz, now_ts = now.date(), now.tzinfo, now.timestamp()
    start, nxt = plan.period(today, topups)
    expired = plan.expired(today, topups)
    t0, t1 = midnight(start, tz), midnight(nxt, tz)
    daily, d = [], start
    while d <= today and (d < nxt or expired):  # an expired bucket still shows what was used after it
        daily.append({"date": d.isoformat(), "bytes": used_bytes(days.get(d.isoformat(), {}), count),
                      "free_bytes": used_bytes(free.get(d.isoformat(), {}), count)})
        d += timedelta(days=1)
    counted = sum(x["bytes"] for x in daily)
    adj = adjustmentsmod.active(adjustments, start)
    offset = adj["offset_bytes"] if adj else 0
    used = max(0, counted + offset)
    since = _ts((doc or {}).get("monitoring_since"))  # the ledger records when datacap began counting the line
    previous_used, before = previous_use(days, plan, start, adjustments, since, tz, count)
    cap = plan.cap_bytes(start, previous_used, topups)
    monitored_from = min(max(t0, since if since is not None else t0), now_ts)
    rate = pace(counted, adj, monitored_from, now_ts, own)
    seconds_left = 0.0 if expired else max(0.0, t1 - max(now_ts, t0))
    projected = int(used + rate * seconds_left)
    cap_at = None  # when the cap will be reached at the current pace
    if used < cap and rate > 0 and projected >= cap:
        cap_at = local_at(now_ts + (cap - used) / rate, tz).isoformat(timespec="seconds")
    window = plan.next_window(now)
    period_days = max(1, (nxt - start).days)
    return {
        "start": start.isoformat(), "end": (nxt - timedelta(days=1)).isoformat(),
        "previous_start": before.isoformat() if before else None,
        "resets_at": local_at(t1, tz).isoformat(timespec="seconds"),
        "monitoring_since": local_at(monitored_from, tz).isoformat(timespec="seconds"),
        "cap_bytes": cap, "base_cap_bytes": plan.base_cap_bytes, "counted_bytes": counted,
        "rollover_bytes": plan.rollover_bytes(previous_used) if before else None,
        "rollover_known": previous_used is not None if plan.rollover_max_bytes and before else None,
        "adjustment_bytes": offset, "used_bytes": used, "free_bytes": sum(x["free_bytes"] for x in daily),
        "percent": 100.0 if expired else round(100 * used / cap, 2), "projected_bytes": projected,
        "projected_percent": round(100 * projected / cap, 1),
        "days_left": round(seconds_left / 86400, 2),
        "daily_budget_bytes": 0 if expired else int(max(0, cap - used) / max(seconds_left / 86400, 1 / 24)),
        "even_daily_bytes": int(cap / period_days),  # the pace that uses the cap exactly by the period's end
        "cap_reached": expired or used >= cap, "cap_date": cap_at, "daily": daily,
        "own_bytes": sum(n for t, n in own if t0 <= t <= now_ts),
        # never more than the cycle: an ISP reading below datacap's count lowers the cycle, not the day
        "today_bytes": min(used, used_bytes(days.get(today.isoformat(), {}), count)),
        "expired": expired,
        "after_expiry_bytes": sum(x["bytes"] for x in daily if x["date"] >= nxt.isoformat()) if expired else 0,
        "plan": {"kind": plan.kind, "words": plan.words(start, nxt, topups),
                 "next_free_window": [w.isoformat(timespec="minutes") for w in window] if window else None},
    }
