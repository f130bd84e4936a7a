"""Throttle detection with hysteresis on the measured 1-second bins (measure/monitor.py feeds it).

- a *candidate* is a low, flat plateau: the median of the last WINDOW seconds is below the open
  level `(1 - threshold) x baseline` (within EDGE, the instrument's own accuracy), the change
  point (a two-level fit) lies at least PLATEAU_S seconds back, at most FLAT_SHARE of the
  seconds since then came back up to the close level, and the seconds before the change point
  sat near the baseline (a step down from normal, not one more swing of a congested link).
  A drop that only just crosses the open level must also be one level (a shaper's plateau: its
  two halves agree within FLAT_TOL, measure/plateau.py) to count after PLATEAU_S; one that
  wanders, as a congested link's swings do, must last SHALLOW_PLATEAU_S. Otherwise the plateau must last LONG_PLATEAU_S,
  unless congestion cannot explain it: a plateau at DEEPEST of the baseline or below, or below
  BAND_SHARE of the low edge of the band the link has swung in (measure/events.py), counts after
  PLATEAU_S however the link behaved before (a lossy satellite link swings all the time, and a
  drop to a tenth is no swing). The monitor decides whether a candidate is a throttle or an
  initial burst;
- an open event closes only when the median of the last WINDOW seconds is back at or above the
  close level, halfway between the open level and the baseline. One throttle, one event: events
  never overlap and the next change-point search starts after the previous end;
- a throttle in tiers steps down while open: a low plateau below the open event's own level (the
  same rules, that level as the baseline, from a first tier whose halves agree within TIER_TOL)
  ends the event at its change point and opens the next step's, `step` 2, 3, ...;
- `start`/`at_bytes` and `end`/`end_at_bytes` are the change points, to a fraction of a second;
  `throttled_mbps` is the mean rate of the whole seconds from TAIL_S after the onset (a change
  point on a lossy link is good to a second, and one second of the old rate in the mean of a drop
  to a tenth was +17 %), leaving out seconds far above the others (measure/plateau.py: the old
  rate's bytes that TCP hands over late, held behind a lost packet until it is resent; +14 to
  +35 % on a 128 kbit/s policer at 600 ms). The seconds of the last minute are judged together;
  older ones join a running total. A closed event's figure stops at its end's change point.
"""
import statistics
from collections import deque
from dataclasses import dataclass

from datacap.measure.plateau import TAIL_S, change_point, one_level, throttled_cap, throttled_seconds
from datacap.measure.speed import mbps

WINDOW = 7  # seconds in the rolling median: dips of up to 3 s never count
PLATEAU_S = 12  # a deep drop must last this long: longer than one swing of a congested link
SHALLOW_PLATEAU_S = 25  # a drop that only just crosses the open level: longer than a few swings
LONG_PLATEAU_S = 30  # any drop, when the link was swinging before it
DEEP = 0.7  # a plateau below this share of the open level is a deep drop
DEEPEST = 0.10  # a plateau at this share of the baseline or below: no congestion swing goes so deep
BAND_SHARE = 0.5  # ... nor below half the low edge of the band the link has swung in
BEFORE_S = 20  # seconds before the change point that must have sat near the baseline
NEAR, NEAR_SHARE = 0.75, 0.80  # this share of them at this share of the baseline or above
HISTORY = 60  # seconds kept for the change-point search
EDGE = 0.05  # a drop to within 5 % of the open level counts: what the instrument can tell apart
FLAT_SHARE = 0.25
TIER_TOL = 0.10  # the two halves of a throttle's first tier, before a further step down
EVENTS_KEPT = 100


@dataclass
class Candidate:
    onset: float  # epoch seconds
    at_bytes: int
    index: int  # active second of the onset bin
    plateau: list  # the bins since the onset
    low_bps: float
    baseline_bps: float
    needed_s: int  # how long the plateau must last to be a throttle

    @property
    def ripe(self):
        return len(self.plateau) >= self.needed_s


class ThrottleDetector:
    """Opens an event on a low plateau, closes it only well above the open level."""

    def __init__(self, threshold_percent, events=None):
        self.set_threshold(threshold_percent)
        self.events = events if events is not None else []
        self._history = deque(maxlen=HISTORY)
        self._retired = (0.0, 0)  # bytes and whole seconds of the open event that have left the history
        self._onset = self._baseline = None
        self.dropping = False  # the recent median is below the open level: a drop is being judged

    def set_threshold(self, threshold_percent):
        """A drop of this many percent below the baseline is a throttle (applies from the next bin)."""
        self.factor = 1 - threshold_percent / 100

    def levels(self, baseline):
        """(open, close) levels in bytes/s."""
        return self.factor * baseline * (1 + EDGE), baseline * (1 + self.factor) / 2

    @property
    def open_event(self):
        return self.events[-1] if self.events and self.events[-1]["end"] is None else None

    def observe(self, b):
        """A measured bin from before there is a baseline: history for the change-point search."""
        self._history.append(b)

    def feed(self, b, baseline, congested, iso, band_low=None):
        """Consider one measured bin; return a Candidate when a low plateau of PLATEAU_S has formed.

        band_low(wall): the low edge of the band the link swung in before `wall` (bytes/s), or None."""
        if self.open_event is not None:
            if len(self._history) == HISTORY:
                self._retire(self._history[0])
            self._history.append(b)
            self._continue(b, iso)
            return None
        self._history.append(b)
        return self._candidate(baseline, congested, band_low)

    def _candidate(self, baseline, congested, band_low=None):
        bins = list(self._history)
        recent = bins[-WINDOW:]
        self.dropping = len(recent) >= WINDOW and statistics.median(x.bytes for x in recent) < self.levels(baseline)[0]
        found = self.dropping and self._low_plateau(bins, baseline)
        if not found:
            return None
        k, onset, at_bytes, low = found
        band = band_low(onset) if band_low else None
        return self._make(bins, found, baseline, lambda plateau, level: self._plateau_needed(
            bins[:k], plateau, baseline, level, congested, band))

    def _low_plateau(self, bins, high):
        """(k, onset, at_bytes, low) of a low, flat plateau after a step down from `high`, else None."""
        open_level, close_level = self.levels(high)
        recent = bins[-WINDOW:]
        if len(recent) < WINDOW or statistics.median(x.bytes for x in recent) >= open_level:
            return None
        low = statistics.median(x.bytes for x in recent if x.bytes < open_level)
        k, onset, at_bytes = change_point(bins, high, low)
        plateau = bins[k:]
        if statistics.median(x.bytes for x in plateau) >= open_level or len(plateau) < PLATEAU_S:
            return None
        if (sum(x.bytes >= close_level for x in plateau) > FLAT_SHARE * len(plateau)
                or statistics.median(x.bytes for x in plateau[-3:]) >= open_level):
            return None  # it keeps coming back, or is coming back now: a swing, not a plateau
        return k, onset, at_bytes, low

    def _make(self, bins, found, high, needed):
        """The Candidate of a plateau found by _low_plateau; needed(plateau, level) -> seconds it must last."""
        k, onset, at_bytes, low = found
        plateau = bins[k:]
        whole = throttled_seconds(plateau, onset) or [low]
        return Candidate(onset, at_bytes, bins[k].index, plateau, statistics.fmean(whole), high,
                         needed(plateau, statistics.median(x.bytes for x in plateau)))

    def _plateau_needed(self, before, plateau, baseline, level, congested, band=None):
        """Seconds a low plateau must last: short for a deep or one-level step down from a steady link,
        and for a drop no congestion explains."""
        if level <= DEEPEST * baseline * (1 + EDGE) or (band is not None and level < BAND_SHARE * band):
            return PLATEAU_S
        before = [x.bytes for x in before[-BEFORE_S:]]
        steady = (not congested and len(before) >= 3
                  and sum(r >= NEAR * baseline for r in before) >= NEAR_SHARE * len(before))
        if not steady:
            return LONG_PLATEAU_S
        if level < DEEP * self.levels(baseline)[0] or one_level(plateau[1:]):  # the onset bin is part old rate
            return PLATEAU_S
        return SHALLOW_PLATEAU_S

    def open(self, cand, detected_wall, iso):
        """Record the candidate as a throttle event."""
        self._retired, self._onset, self._baseline = (0.0, 0), cand.onset, cand.baseline_bps
        baseline = cand.baseline_bps
        self.events.append({
            "kind": "throttle", "start": iso(cand.onset), "at_bytes": cand.at_bytes,
            "at_gb": round(cand.at_bytes / 1e9, 4), "baseline_mbps": round(mbps(baseline), 3),
            "throttled_mbps": round(mbps(cand.low_bps), 3), "detected_at": iso(detected_wall),
            "end": None, "end_at_bytes": None,
        })
        del self.events[:-EVENTS_KEPT]
        self._history.clear()
        self._history.extend(cand.plateau)

    def _continue(self, b, iso):
        event, baseline = self.open_event, self._baseline
        if b.wall_start >= self._onset + TAIL_S:
            event["throttled_mbps"] = round(mbps(self._throttled_bps()), 3)
        _, close_level = self.levels(baseline)
        recent = list(self._history)[-WINDOW:]
        if len(recent) < WINDOW or statistics.median(x.bytes for x in recent) < close_level:
            step = self._next_step()
            if step is not None:
                self._split(step, b.wall_start + 1, iso)
            return
        high = statistics.median(x.bytes for x in recent if x.bytes >= close_level)
        bins = list(self._history)[-2 * WINDOW:]
        k, end, end_bytes = change_point(bins, self._throttled_bps(), high)
        if self._retired[1] or self._seconds(bins[k].index):  # the way back up is not the throttled rate
            event["throttled_mbps"] = round(mbps(self._throttled_bps(bins[k].index)), 3)
        event["end"], event["end_at_bytes"] = iso(end), end_bytes
        self._history.clear()
        self._history.extend(x for x in bins[k:] if x.wall_start >= end - 1)

    def _retire(self, x):
        """A second of the open event leaves the history: its bytes join the event's total, judged by the
        seconds around it (so the old rate's late bytes in the first seconds are judged by a whole minute)."""
        if x.wall_start >= self._onset + TAIL_S and x.bytes <= throttled_cap(self._seconds()):
            total, n = self._retired
            self._retired = (total + x.bytes, n + 1)

    def _seconds(self, before_index=None):
        """The open event's whole seconds in the history (those before bin `before_index`)."""
        return [x.bytes for x in self._history if x.wall_start >= self._onset + TAIL_S
                and (before_index is None or x.index < before_index)]

    def _throttled_bps(self, before_index=None):
        """The mean of the open event's seconds: those retired, and those in the history not far above the rest."""
        seconds = self._seconds(before_index)
        cap = throttled_cap(seconds)
        kept = [r for r in seconds if r <= cap]
        total, n = self._retired
        return (total + sum(kept)) / (n + len(kept)) if n + len(kept) else 0.0

    def _next_step(self):
        """A ripe plateau below the open event's own level (a second throttle tier), else None."""
        bins = list(self._history)
        mine = [x.bytes for x in bins[:-WINDOW] if x.wall_start >= self._onset + TAIL_S]
        if len(mine) < 3:
            return None
        found = self._low_plateau(bins, statistics.median(mine))
        if not found:
            return None
        k = found[0]
        before = [x.bytes for x in bins[:k] if x.wall_start >= self._onset + TAIL_S][-BEFORE_S:]
        level = statistics.median(before or mine)
        half = len(before) // 2
        if half < 3 or abs(statistics.median(before[:half]) - statistics.median(before[half:])) > TIER_TOL * level:
            return None  # the first tier is no level of its own (a slow decline): one throttle
        cand = self._make(bins, found, level, lambda plateau, low: self._plateau_needed(
            bins[:k], plateau, level, low, False))
        return cand if cand.ripe else None

    def _split(self, cand, detected_wall, iso):
        """The open event ends where the next step begins; the step is an event of its own, from the
        open event's level (`baseline_mbps`) to its own, numbered by `step`."""
        event = self.open_event
        if self._retired[1] or self._seconds(cand.index):
            event["throttled_mbps"] = round(mbps(self._throttled_bps(cand.index)), 3)
        event["end"], event["end_at_bytes"] = iso(cand.onset), cand.at_bytes
        self.open(cand, detected_wall, iso)
        self.events[-1]["step"] = event.get("step", 1) + 1

    def restart_from(self, bins):
        """Search for change points only from these bins on (after an initial burst)."""
        self._history.clear()
        self._history.extend(bins)

    def recovered_bins(self):
        """The bins after the last event's end (ordinary seconds the baseline may take back)."""
        return list(self._history)
