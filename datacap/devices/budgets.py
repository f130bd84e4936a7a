"""Budgets and pauses: who is paused now, and why. Pure rules over figures and a clock the caller passes in.

A device over its budget (per day, or per cycle of its line) is paused until the period ends; unpausing it
lets it through for the rest of that period. A user's pause lasts until unpaused, or "until tomorrow"
(next local midnight), or "until the cycle resets". A budget pause also ends when the budget is removed or
raised above what the device has used. Each budget pause is an event with a key that names the device and the
period, so its notification is sent once.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from datacap.usage import cycles

UNTIL = (None, "tomorrow", "cycle")


@dataclass(frozen=True)
class Budget:
    nbytes: int
    per: str  # "day" | "cycle"

    def period(self, now, cycle):
        """(key naming the period containing `now`, ISO instant it ends); cycle: the device's line's figure."""
        if self.per == "day":
            return f"day:{now.date().isoformat()}", next_midnight(now)
        return f"cycle:{cycle['start']}", cycle["resets_at"]

    def used(self, usage):
        return usage["today_bytes"] if self.per == "day" else usage["cycle_bytes"]


def next_midnight(now):
    """The ISO instant the local day after `now` (aware) begins, with the zone's DST rules."""
    return cycles.local_at(cycles.midnight(now.date() + timedelta(days=1), now.tzinfo), now.tzinfo).isoformat(
        timespec="seconds")


def _ended(until, now):
    return until is not None and datetime.fromisoformat(until) <= now


@dataclass
class Change:
    mac: str
    pause: dict = None  # the device's pause from now on (None: let through)
    allowed: str = None  # the period it is let through for despite its budget ("" clears it)
    event: dict = None  # news for the notifier
    why: str = ""


class PauseRules:
    """The budgets from the config and the pause state (as the database holds it); changes to apply, in order."""

    def __init__(self, budgets, paused, allowed):
        self.budgets = {mac: Budget(*b) for mac, b in budgets.items()}
        self.paused = dict(paused)  # mac -> {"since", "until", "reason", "period"}
        self.allowed = dict(allowed)  # mac -> period key

    def apply(self, change):
        if change.pause is None:
            self.paused.pop(change.mac, None)
        else:
            self.paused[change.mac] = change.pause
        if change.allowed is not None:
            self.allowed[change.mac] = change.allowed

    def due(self, now, usage, names):
        """The changes the figures call for now. usage: {mac: {"today_bytes", "cycle_bytes", "cycle"}}."""
        out = []
        for mac, p in list(self.paused.items()):
            budget = self.budgets.get(mac)
            if _ended(p["until"], now):
                out.append(Change(mac, why="its pause ended"))
            elif p["reason"] == "budget" and (budget is None or mac not in usage
                                              or budget.period(now, usage[mac]["cycle"])[0] != p["period"]
                                              or budget.used(usage[mac]) < budget.nbytes):
                out.append(Change(mac, why="it is within its budget again"))
        ending = {c.mac for c in out}
        for mac, budget in self.budgets.items():
            if mac not in usage or (mac in self.paused and mac not in ending):
                continue
            key, ends = budget.period(now, usage[mac]["cycle"])
            used = budget.used(usage[mac])
            if used >= budget.nbytes and self.allowed.get(mac) != key:
                at = now.isoformat(timespec="seconds")
                event = {"key": f"device-budget:{mac}:{key}", "kind": "device_budget", "mac": mac,
                         "name": names.get(mac), "at": at, "budget_bytes": budget.nbytes, "used_bytes": used,
                         "per": budget.per, "until": ends}
                out = [c for c in out if c.mac != mac]
                out.append(Change(mac, {"since": at, "until": ends, "reason": "budget", "period": key}, event=event,
                                  why=f"it reached its budget of {budget.nbytes / 1e9:g} GB per {budget.per}"))
        for change in out:
            self.apply(change)
        return out

    def request(self, mac, action, until, now, usage):
        """A pause ("until": None, "tomorrow" or "cycle") or unpause asked for through the API."""
        cycle = usage.get(mac, {}).get("cycle")
        if action == "pause":
            ends = next_midnight(now) if until == "tomorrow" else (cycle or {}).get("resets_at") if until == "cycle" else None
            change = Change(mac, {"since": now.isoformat(timespec="seconds"), "until": ends, "reason": "user",
                                  "period": None}, allowed="", why="paused from the dashboard")
        else:
            budget = self.budgets.get(mac)
            over = budget is not None and mac in usage and budget.used(usage[mac]) >= budget.nbytes
            change = Change(mac, None, allowed=budget.period(now, cycle)[0] if over else "",
                            why="let through from the dashboard")
        self.apply(change)
        return change
