"""A cycle's probe budget, and how much the next probe may read: paced so that each probe can settle.

The budget is probe_budget_percent of the cap; every probe's bytes count against it. The next probe
may read what is left paced over the probes left in the cycle (up to SHARE_FACTOR x an even share,
at least MIN_PROBE_BYTES, at most MAX_PROBE_BYTES), never into the cap's last LAST_SHARE.

A probe stopped by its byte ceiling has not settled: its figure is low (13 % at 80 Mbit/s on a
1 MB ceiling) and says nothing. So when that paced share is below what the line needs (`need_bytes`:
NEED_MARGIN x the most the last settled probes read), probes become fewer and larger: one that can
settle every `spacing` (the time left x need / the budget left), and it may read the need; none when
less than the need is left. The first probe of a cycle runs at once. Before any probe has settled, the
need is a guess that grows: FIRST_NEED_BYTES, then GROWTH x what an unsettled probe read.
"""
from datetime import datetime

from datacap.measure.probe.file import of_cycle

LAST_SHARE = 0.02  # no probe in the cycle's last 2 % of the cap
MIN_PROBE_BYTES = 1_000_000  # less than this says nothing about a link
MAX_PROBE_BYTES = 500_000_000  # 3 s at 1 Gbit/s and its slow start
SHARE_FACTOR = 4  # a probe may use this many times its even share of what is left (skipped probes leave some)
NEED_PROBES = 5  # the last settled probes that say what the line needs
NEED_MARGIN = 1.5  # a probe settles in a varying number of windows
FIRST_NEED_BYTES = 16_000_000  # an 80 Mbit/s line settles in about 12 MB
GROWTH = 2  # a probe that hit its ceiling unsettled: the next may read twice as much


def budget(cfg, cap_bytes, doc, cycle_start):
    """The cycle's probe budget: probe_budget_percent of the cap, less every probe's bytes."""
    total = int(cap_bytes * cfg["probe_budget_percent"] / 100)
    spent = sum(int(p["bytes"]) for p in of_cycle(doc, cycle_start))
    return {"budget_bytes": total, "spent_bytes": spent, "left_bytes": max(0, total - spent),
            "used_percent": round(100 * spent / total, 2) if total else 100.0}


def need_bytes(doc):
    """About what a probe on this line needs to settle, from the probes kept (any cycle: it is the line's)."""
    probes = doc["probes"]
    settled = [p["bytes"] for p in probes if p.get("stopped_by") == "settled"][-NEED_PROBES:]
    need = NEED_MARGIN * max(settled) if settled else FIRST_NEED_BYTES
    if probes and probes[-1].get("stopped_by") == "bytes":  # the newest one was too small
        need = max(need, GROWTH * probes[-1]["bytes"])
    return int(min(need, MAX_PROBE_BYTES))


def allowance(cfg, summary, doc, now_ts):
    """(bytes the next probe may read, why none when 0): the budget paced over the cycle so that each probe
    can settle, outside the cap's last 2 %."""
    cap, used = summary["cap_bytes"], summary["used_bytes"]
    if used >= cap * (1 - LAST_SHARE):
        return 0, "the cycle is in the last 2 % of the cap"
    left = budget(cfg, cap, doc, summary["start"])["left_bytes"]
    if left < MIN_PROBE_BYTES:
        return 0, "this cycle's probe budget is spent"
    time_left = max(1.0, datetime.fromisoformat(summary["resets_at"]).timestamp() - now_ts)
    share = SHARE_FACTOR * left / max(1.0, time_left / ((cfg["probe_interval_minutes"] or 60) * 60))
    need = need_bytes(doc)
    known = any(p.get("stopped_by") == "settled" for p in doc["probes"])  # else the need is a guess: try it
    if share >= need:
        allow = min(left, MAX_PROBE_BYTES, max(MIN_PROBE_BYTES, share))
    elif known and left < need:
        return 0, f"the probe budget left ({left / 1e6:.1f} MB) is less than a probe that can settle needs"
    else:  # fewer, larger probes: one that can settle every `spacing` seconds
        spacing = time_left * need / left
        mine = of_cycle(doc, summary["start"])
        since = now_ts - datetime.fromisoformat(mine[-1]["time"]).timestamp() if mine else float("inf")
        if since < spacing:
            return 0, (f"pacing: a probe that can settle needs ~{need / 1e6:.0f} MB; the budget left allows one "
                       f"every {spacing / 3600:.1f} h")
        allow = min(left, need)
    allow = int(min(allow, cap * (1 - LAST_SHARE) - used))
    if allow < MIN_PROBE_BYTES or (known and allow < min(need, left)):
        return 0, "too close to the last 2 % of the cap"
    return allow, None
