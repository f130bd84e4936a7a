"""A plan as an ISP sells it, built once from a line's config: its periods, cap, rollover, free windows, top-ups.

    "plan": null                                     monthly: data_cap_gb from billing_day (the default)
    "plan": {"kind": "rolling", "period_days": 30, "start": "2026-11-03"}     every 30 days from start
    "plan": {"kind": "prepaid", "gb": 50, "start": "2026-11-09", "expires": "2026-12-09"}
    monthly and rolling: "rollover_max_gb": 20; any kind: "free_windows": [{"start": "23:00", "end": "07:00"}]

Callers ask the plan (plan.period(today), plan.cap_bytes(...)); nobody else reads these keys.
Unused data of the previous period carries over up to rollover_max_gb (one period deep), and only
when that period's use is known. Top-ups add to a prepaid bucket and may move its expiry later.
"""
from datetime import date, timedelta

from datacap.usage import cycles, free_windows
from datacap.usage import topups as topupsmod


class Plan:
    kind = None

    def __init__(self, gb, rollover_max_gb=None, windows=None):
        self.base_cap_bytes = int(gb * 1e9)
        self.rollover_max_bytes = int(rollover_max_gb * 1e9) if rollover_max_gb else 0
        self.windows = windows or []

    def period(self, today, topups=None):
        """(first day, first day after) of the period containing `today`."""
        raise NotImplementedError

    def previous(self, start):
        """First day of the period before the one starting on `start`; None when there is none."""
        return None

    def cap_bytes(self, start, previous_used, topups=None):
        """This period's cap: the plan's, plus rollover when the previous period's use is known."""
        return self.base_cap_bytes + self.rollover_bytes(previous_used)

    def rollover_bytes(self, previous_used):
        if not self.rollover_max_bytes or previous_used is None:
            return 0
        return min(self.rollover_max_bytes, max(0, self.base_cap_bytes - previous_used))

    def expired(self, today, topups=None):
        return False

    def free_share(self, a, b, tz):
        """The share of [a, b] (epoch seconds) inside the free windows."""
        return free_windows.free_share(self.windows, a, b, tz)

    def next_window(self, now):
        return free_windows.next_window(self.windows, now)

    def _extras(self):
        roll = f"; unused data rolls over (up to {self.rollover_max_bytes / 1e9:g} GB)" if self.rollover_max_bytes else ""
        free = f"; free {', '.join(w['start'] + '–' + w['end'] for w in self.windows)}" if self.windows else ""
        return roll + free

    def words(self, start, end, topups=None):
        """The plan in one line, as a user would say it."""
        raise NotImplementedError

    def warnings(self, today, topups=None):
        """Things to tell the user that are not errors."""
        return []


def _day(d):
    return f"{d:%b} {d.day}"


class Monthly(Plan):
    kind = "monthly"

    def __init__(self, gb, billing_day, **kw):
        super().__init__(gb, **kw)
        self.billing_day = billing_day

    def period(self, today, topups=None):
        first = cycles.cycle_start(self.billing_day, today)
        return first, cycles.next_cycle_start(self.billing_day, first)

    def previous(self, start):
        return cycles.cycle_start(self.billing_day, start - timedelta(days=1))

    def words(self, start, end, topups=None):
        return f"{self.base_cap_bytes / 1e9:g} GB a month from day {self.billing_day}{self._extras()}"


class Rolling(Plan):
    kind = "rolling"

    def __init__(self, gb, start, period_days, **kw):
        super().__init__(gb, **kw)
        self.start, self.days = date.fromisoformat(start), period_days

    def period(self, today, topups=None):
        first = self.start + timedelta(days=(today - self.start).days // self.days * self.days)
        return first, first + timedelta(days=self.days)

    def previous(self, start):
        return start - timedelta(days=self.days)

    def words(self, start, end, topups=None):
        return (f"{self.base_cap_bytes / 1e9:g} GB every {self.days} days "
                f"(this period {_day(start)}–{_day(end - timedelta(days=1))}){self._extras()}")


class Prepaid(Plan):
    """A bucket from `start` to `expires` (a top-up may move it later); after it expires nothing is left."""
    kind = "prepaid"

    def __init__(self, gb, start, expires, **kw):
        super().__init__(gb, **kw)
        self.start, self.expires = date.fromisoformat(start), date.fromisoformat(expires)

    def period(self, today, topups=None):
        return self.start, topupsmod.expiry(topups, self.start, self.expires)

    def cap_bytes(self, start, previous_used, topups=None):
        return self.base_cap_bytes + topupsmod.total_bytes(topups, start)

    def expired(self, today, topups=None):
        return today >= self.period(today, topups)[1]

    def words(self, start, end, topups=None):
        n = len(topupsmod.active(topups, start))
        ups = f"; {n} top-up{'s' if n != 1 else ''}" if n else ""
        return f"Prepaid {self.base_cap_bytes / 1e9:g} GB, expires {_day(end)}{ups}{self._extras()}"

    def warnings(self, today, topups=None):
        end = self.period(today, topups)[1]
        if today >= end:
            return [f"plan: the prepaid bucket expired on {end.isoformat()}: add a top-up or a new plan"]
        return []


def build(line):
    """The plan of a line's config (a validated dict with data_cap_gb, billing_day and plan)."""
    p = line.get("plan") or {"kind": "monthly"}
    extra = {"rollover_max_gb": p.get("rollover_max_gb"), "windows": p.get("free_windows")}
    if p["kind"] == "rolling":
        return Rolling(p.get("gb", line["data_cap_gb"]), p["start"], p["period_days"], **extra)
    if p["kind"] == "prepaid":
        return Prepaid(p["gb"], p["start"], p["expires"], windows=p.get("free_windows"))
    return Monthly(p.get("gb", line["data_cap_gb"]), line["billing_day"], **extra)


KEYS = {"monthly": {"kind", "gb", "rollover_max_gb", "free_windows"},
        "rolling": {"kind", "gb", "period_days", "start", "rollover_max_gb", "free_windows"},
        "prepaid": {"kind", "gb", "start", "expires", "free_windows"}}


def _iso_day(v):
    try:
        date.fromisoformat(v)
        return isinstance(v, str)
    except (TypeError, ValueError):
        return False


def check(v):
    """Config rule for `plan`: None when good, else one line naming the key."""
    if v is None:
        return None
    if not isinstance(v, dict) or v.get("kind") not in KEYS:
        return 'kind: must be "monthly", "rolling" or "prepaid"'
    if v["kind"] == "prepaid" and "rollover_max_gb" in v:
        return ("rollover_max_gb: a prepaid bucket has no period before it to roll data over from; "
                "add carried-over data as a top-up")
    unknown = sorted(set(v) - KEYS[v["kind"]])
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
    return free_windows.check(v.get("free_windows") or [])
