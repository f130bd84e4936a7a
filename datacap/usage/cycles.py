"""Billing cycles and the cap: pure functions over the ledger and adjustments.json."""
import calendar
import time as _time
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from datacap.usage import adjustments as adjustmentsmod
from datacap.usage import plans


def _clamped(year, month, day):
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_month(year, month, n):
    m = year * 12 + (month - 1) + n
    return m // 12, m % 12 + 1


def cycle_start(billing_day, today):
    """First day of the cycle containing `today`; day 31 means the last day of short months."""
    this = _clamped(today.year, today.month, billing_day)
    if today >= this:
        return this
    return _clamped(*_add_month(today.year, today.month, -1), billing_day)


def next_cycle_start(billing_day, start):
    return _clamped(*_add_month(start.year, start.month, 1), billing_day)


def midnight(d, tz):
    """Epoch seconds of local midnight starting day d, with the zone's DST rules."""
    if isinstance(tz, ZoneInfo):
        return datetime.combine(d, time(), tzinfo=tz).timestamp()
    return _time.mktime(datetime.combine(d, time()).timetuple())  # the system's local rules


def used_bytes(entry, count):
    """entry is {iface: [rx, tx]}; count is 'both' or 'download'."""
    return sum(rx + (tx if count == "both" else 0) for rx, tx in entry.values())


MIN_PACE_WINDOW_S = 600.0  # a pace measured over less than this is taken over this long


def days_of_cycle(days, start):
    """The entries of `days` from the cycle's first day (an ISO date) on."""
    return {d: v for d, v in days.items() if d >= start}


def local_at(ts, tz):
    """Epoch seconds as an aware local time, with the UTC offset valid at that instant (DST)."""
    if isinstance(tz, ZoneInfo):
        return datetime.fromtimestamp(ts, tz)
    return datetime.fromtimestamp(ts).astimezone()  # the system's rules for that instant


def _since(iso, default):
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return default


def pace(counted, adj, monitored_from, now_ts):
    """Bytes per second over what datacap has watched: since the ISP reading if there is one, else
    since it started counting this cycle."""
    if adj is not None and isinstance(adj.get("counted_bytes"), int):
        at = _since(adj.get("at"), None)
        if at is not None and at >= monitored_from:
            return max(0, counted - adj["counted_bytes"]) / max(now_ts - at, MIN_PACE_WINDOW_S)
    return counted / max(now_ts - monitored_from, MIN_PACE_WINDOW_S)


def previous_start(cfg, start):
    """First day of the period before the one starting on `start` (None for a prepaid bucket)."""
    plan = plans.plan_of(cfg)
    if plan["kind"] == "rolling":
        return start - timedelta(days=plan["period_days"])
    if plan["kind"] == "prepaid":
        return None
    return cycle_start(cfg["billing_day"], start - timedelta(days=1))


def _sum_days(days, first, end, count):
    return sum(used_bytes(v, count) for d, v in days.items() if first.isoformat() <= d < end.isoformat())


def cycle_summary(source, adjustments, cfg, now, topups=None):
    """Everything the dashboard says about the cap, for the period containing `now` (aware).

    source: a document with "days" and "free" ({date: {name: [rx, tx]}}) and "monitoring_since" (ISO):
    the collector's live file or its ledger; the same function serves every reader.
    """
    days, free = (source or {}).get("days") or {}, (source or {}).get("free") or {}
    today, count = now.date(), cfg["count"]
    start, nxt = plans.period(cfg, today, topups)
    t0, t1, now_ts = midnight(start, now.tzinfo), midnight(nxt, now.tzinfo), now.timestamp()
    daily = []
    d = start
    while d < nxt and d <= today:
        daily.append({"date": d.isoformat(), "bytes": used_bytes(days.get(d.isoformat(), {}), count),
                      "free_bytes": used_bytes(free.get(d.isoformat(), {}), count)})
        d += timedelta(days=1)
    counted = sum(x["bytes"] for x in daily)
    adj = adjustmentsmod.active(adjustments, start)
    offset = adj["offset_bytes"] if adj else 0
    used = max(0, counted + offset)
    before = previous_start(cfg, start)
    cap = plans.cap_bytes(cfg, start, _sum_days(days, before, start, count) if before else None, topups)
    monitored_from = min(max(t0, _since((source or {}).get("monitoring_since"), t0)), now_ts)
    rate = pace(counted, adj, monitored_from, now_ts)
    seconds_left = max(0.0, t1 - max(now_ts, t0))
    projected = int(used + rate * seconds_left)
    cap_at = None  # when the cap will be reached at the current pace
    if used < cap and rate > 0 and projected >= cap:
        cap_at = local_at(now_ts + (cap - used) / rate, now.tzinfo).isoformat(timespec="seconds")
    window = plans.next_window(plans.plan_of(cfg).get("free_windows"), now)
    return {
        "start": start.isoformat(), "end": (nxt - timedelta(days=1)).isoformat(),
        "previous_start": before.isoformat() if before else None,
        "resets_at": local_at(t1, now.tzinfo).isoformat(timespec="seconds"),
        "monitoring_since": local_at(monitored_from, now.tzinfo).isoformat(timespec="seconds"),
        "cap_bytes": cap, "base_cap_bytes": plans.base_cap_bytes(cfg), "counted_bytes": counted,
        "adjustment_bytes": offset, "used_bytes": used, "free_bytes": sum(x["free_bytes"] for x in daily),
        "percent": round(100 * used / cap, 2), "projected_bytes": projected,
        "projected_percent": round(100 * projected / cap, 1),
        "days_left": round(seconds_left / 86400, 2),
        "daily_budget_bytes": int(max(0, cap - used) / max(seconds_left / 86400, 1 / 24)),
        "cap_reached": used >= cap, "cap_date": cap_at, "daily": daily,
        "today_bytes": used_bytes(days.get(today.isoformat(), {}), count),
        "expired": plans.plan_of(cfg)["kind"] == "prepaid" and now_ts >= t1,
        "plan": {"kind": plans.plan_of(cfg)["kind"], "words": plans.words(cfg, topups, start, nxt),
                 "next_free_window": [w.isoformat(timespec="minutes") for w in window] if window else None},
    }
