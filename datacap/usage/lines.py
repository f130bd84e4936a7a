"""Lines: the connections a household pays for, each with its own plan, counter and alerts.

A config without `lines` is one line, named "Internet", made of the top-level keys.
"""
from dataclasses import dataclass

from datacap.usage import plan as planmod
from datacap.usage.ledger_file import FIRST_LINE


@dataclass(frozen=True)
class Line:
    name: str
    plan: planmod.Plan
    count: str  # "both" directions count, or "download" only
    alert_thresholds_percent: tuple
    stop_at_cap: bool


_built = (None, None)  # (config, its lines): a config is replaced whole, never changed in place


def of(cfg):
    """The configured lines, in order (the first is the one the top-level API keys describe)."""
    global _built
    if _built[0] is not cfg:
        _built = (cfg, [Line(FIRST_LINE, planmod.build(cfg), cfg["count"], tuple(cfg["alert_thresholds_percent"]),
                             cfg["stop_at_cap"])])
    return _built[1]
