"""Calendar arithmetic of billing periods: month ends, local midnights, the offset valid at an instant."""
import calendar
import time as _time
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


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


def days_of_cycle(days, start):
    """The entries of `days` from the cycle's first day (an ISO date) on."""
    return {d: v for d, v in days.items() if d >= start}


def local_now():
    """The wall clock in the local time zone: every process's "now" for dates and cycles."""
    return datetime.now().astimezone()


def local_at(ts, tz):
    """Epoch seconds as an aware local time, with the UTC offset valid at that instant (DST)."""
    if isinstance(tz, ZoneInfo):
        return datetime.fromtimestamp(ts, tz)
    return datetime.fromtimestamp(ts).astimezone()  # the system's rules for that instant
