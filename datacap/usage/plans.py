"""Plans as ISPs sell them: the period a cap applies to, the cap itself, and free windows.

    "plan": null                                     monthly: data_cap_gb from billing_day (the default)
    "plan": {"kind": "rolling", "period_days": 30, "start": "2026-11-03"}     every 30 days from start
    "plan": {"kind": "prepaid", "gb": 50, "start": "2026-11-09", "expires": "2026-12-09"}
    any kind: "rollover_max_gb": 20, "free_windows": [{"start": "23:00", "end": "07:00", "weekdays": ["mon"]}]

A window that ends at or before its start crosses midnight; its weekdays are the days it starts on.
Bytes inside a window are free: counted apart, never toward the cap. Unused data of the previous
period carries over up to rollover_max_gb (one period deep). Top-ups add to a prepaid bucket and may
move its expiry later. Windows are local time, with the zone's DST rules.
"""
import time as _time
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from datacap.usage import topups as topupsmod

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _instant(d, hhmm, tz):
    """Epoch seconds of local time hh:mm on day d."""
    at = datetime.combine(d, time(*map(int, hhmm.split(":"))))
    if isinstance(tz, ZoneInfo):
        return at.replace(tzinfo=tz).timestamp()
    return _time.mktime(at.timetuple())  # the system's local rules


def window_spans(windows, first, last, tz):
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
    inside = sum(max(0.0, min(b, y) - max(a, x)) for x, y in window_spans(windows, first, last, tz))
    return min(1.0, inside / (b - a))


def next_window(windows, now):
    """(start, end) as aware datetimes of the free window open now or next, None without windows."""
    if not windows:
        return None
    ts = now.timestamp()
    spans = sorted(s for s in window_spans(windows, now.date() - timedelta(days=1), now.date() + timedelta(days=7),
                                           now.tzinfo) if s[1] > ts)
    if not spans:
        return None
    return tuple(_aware(x, now.tzinfo) for x in spans[0])


def _aware(ts, tz):
    return datetime.fromtimestamp(ts, tz) if isinstance(tz, ZoneInfo) else datetime.fromtimestamp(ts).astimezone()


def plan_of(cfg):
    """The plan as a dict with its kind, whatever the config says (null means monthly)."""
    return cfg.get("plan") or {"kind": "monthly"}


def period(cfg, today, topups=None):
    """(first day, first day after) of the period containing `today` (for prepaid: the bucket's)."""
    from datacap.usage import cycles  # month arithmetic lives there
    plan = plan_of(cfg)
    if plan["kind"] == "rolling":
        start = date.fromisoformat(plan["start"])
        n = plan["period_days"]
        k = (today - start).days // n
        first = start + timedelta(days=k * n)
        return first, first + timedelta(days=n)
    if plan["kind"] == "prepaid":
        start = date.fromisoformat(plan["start"])
        return start, topupsmod.expiry(topups, start, date.fromisoformat(plan["expires"]))
    first = cycles.cycle_start(cfg["billing_day"], today)
    return first, cycles.next_cycle_start(cfg["billing_day"], first)


def base_cap_bytes(cfg):
    plan = plan_of(cfg)
    gb = plan.get("gb") if plan["kind"] == "prepaid" else plan.get("gb", cfg["data_cap_gb"])
    return int((gb if gb is not None else cfg["data_cap_gb"]) * 1e9)


def cap_bytes(cfg, start, previous_used, topups=None):
    """This period's cap: the plan's, plus top-ups (prepaid), plus rollover from the previous period."""
    plan = plan_of(cfg)
    cap = base_cap_bytes(cfg)
    if plan["kind"] == "prepaid":
        cap += topupsmod.total_bytes(topups, start)
    rollover = plan.get("rollover_max_gb")
    if rollover and previous_used is not None:
        cap += min(int(rollover * 1e9), max(0, base_cap_bytes(cfg) - previous_used))
    return cap


def words(cfg, topups, start, end):
    """The plan in one line, as a user would say it."""
    plan, fmt = plan_of(cfg), (lambda d: f"{d:%b} {d.day}")
    free = f"; free {', '.join(w['start'] + '–' + w['end'] for w in plan.get('free_windows') or [])}" \
        if plan.get("free_windows") else ""
    roll = f"; unused data rolls over (up to {plan['rollover_max_gb']:g} GB)" if plan.get("rollover_max_gb") else ""
    if plan["kind"] == "prepaid":
        n = len(topupsmod.active(topups, start))
        ups = f"; {n} top-up{'s' if n != 1 else ''}" if n else ""
        return f"Prepaid {base_cap_bytes(cfg) / 1e9:g} GB, expires {fmt(end)}{ups}{roll}{free}"
    if plan["kind"] == "rolling":
        return f"{base_cap_bytes(cfg) / 1e9:g} GB every {plan['period_days']} days (this period {fmt(start)}–{fmt(end - timedelta(days=1))}){roll}{free}"
    return f"{base_cap_bytes(cfg) / 1e9:g} GB a month from day {cfg['billing_day']}{roll}{free}"


def warnings(cfg, today):
    """Things to tell the user that are not errors (an expired prepaid bucket)."""
    plan = plan_of(cfg)
    if plan["kind"] == "prepaid" and date.fromisoformat(plan["expires"]) <= today:
        return [f"plan: the prepaid bucket expired on {plan['expires']}: add a top-up or a new plan"]
    return []


PLAN_KEYS = {"monthly": {"kind", "gb", "rollover_max_gb", "free_windows"},
             "rolling": {"kind", "gb", "period_days", "start", "rollover_max_gb", "free_windows"},
             "prepaid": {"kind", "gb", "start", "expires", "rollover_max_gb", "free_windows"}}


def _hhmm(v):
    try:
        h, m = v.split(":")
        return len(h) == 2 and len(m) == 2 and 0 <= int(h) <= 23 and 0 <= int(m) <= 59
    except (AttributeError, ValueError):
        return False


def _iso_day(v):
    try:
        date.fromisoformat(v)
        return isinstance(v, str)
    except (TypeError, ValueError):
        return False


def _check_windows(windows):
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


def check(v):
    """Config rule for `plan`: None when good, else one line naming the key."""
    if v is None:
        return None
    if not isinstance(v, dict) or v.get("kind") not in PLAN_KEYS:
        return 'kind: must be "monthly", "rolling" or "prepaid"'
    unknown = sorted(set(v) - PLAN_KEYS[v["kind"]])
    if unknown:
        return f"{unknown[0]}: not a key of a {v['kind']} plan"
    for key in ("gb", "rollover_max_gb"):
        x = v.get(key)
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.001 <= x <= 1_000_000):
            return f"{key}: must be a number from 0.001 to 1000000, got {x!r}"
    if v["kind"] == "rolling":
        n = v.get("period_days")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 366:
            return f"period_days: must be a whole number of days from 1 to 366, got {n!r}"
    if v["kind"] in ("rolling", "prepaid") and not _iso_day(v.get("start")):
        return f"start: must be a date like \"2026-11-03\", got {v.get('start')!r}"
    if v["kind"] == "prepaid":
        if v.get("gb") is None:
            return "gb: a prepaid plan needs the bucket's size in GB"
        if not _iso_day(v.get("expires")):
            return f"expires: must be a date like \"2026-12-09\", got {v.get('expires')!r}"
        if v["expires"] <= v["start"]:
            return "expires: must be after start"
    return _check_windows(v.get("free_windows") or [])
