"""A cycle's probe budget, and how much the next probe may read: the budget paced over the cycle."""
from datetime import datetime

from datacap.measure.probe.file import of_cycle

LAST_SHARE = 0.02  # no probe in the cycle's last 2 % of the cap
MIN_PROBE_BYTES = 1_000_000  # less than this says nothing about a link
MAX_PROBE_BYTES = 500_000_000  # 3 s at 1 Gbit/s and its slow start
SHARE_FACTOR = 4  # a probe may use this many times its even share of what is left (skipped probes leave some)


def budget(cfg, cap_bytes, doc, cycle_start):
    """The cycle's probe budget: probe_budget_percent of the cap, less every probe's bytes."""
    total = int(cap_bytes * cfg["probe_budget_percent"] / 100)
    spent = sum(int(p["bytes"]) for p in of_cycle(doc, cycle_start))
    return {"budget_bytes": total, "spent_bytes": spent, "left_bytes": max(0, total - spent),
            "used_percent": round(100 * spent / total, 2) if total else 100.0}


def allowance(cfg, summary, doc, now_ts):
    """(bytes the next probe may read, why none when 0): the budget paced over the cycle, the cap's last 2 %."""
    cap, used = summary["cap_bytes"], summary["used_bytes"]
    if used >= cap * (1 - LAST_SHARE):
        return 0, "the cycle is in the last 2 % of the cap"
    left = budget(cfg, cap, doc, summary["start"])["left_bytes"]
    if left < MIN_PROBE_BYTES:
        return 0, "this cycle's probe budget is spent"
    interval_s = (cfg["probe_interval_minutes"] or 60) * 60
    probes_left = max(1.0, (datetime.fromisoformat(summary["resets_at"]).timestamp() - now_ts) / interval_s)
    allow = int(min(left, MAX_PROBE_BYTES, max(MIN_PROBE_BYTES, SHARE_FACTOR * left / probes_left),
                    cap * (1 - LAST_SHARE) - used))
    if allow < MIN_PROBE_BYTES:
        return 0, "too close to the last 2 % of the cap"
    return allow, None
