"""Throttle detection on the 1-second bins of measure/speed.py.

- baseline is the median of the first `baseline_seconds` usable bins;
- an event opens when the median of the last WINDOW usable bins falls below
  (1 - threshold/100) x baseline, and closes when it rises above it again. Its onset is
  back-dated to the change point found by a two-level fit, to a fraction of a bin.
"""
import statistics
from collections import deque

from datacap.measure.speed import mbps

WINDOW = 7  # bins in the rolling median: dips up to 3 s never open an event
HISTORY = 16  # usable bins kept for the change-point search


def two_level_split(rates, high, low):
    """Index of the first 'low' bin minimising |error| of a high-then-low fit."""
    best, best_cost = len(rates), None
    for k in range(len(rates) + 1):
        cost = sum(abs(r - high) for r in rates[:k]) + sum(abs(r - low) for r in rates[k:])
        if best_cost is None or cost < best_cost:
            best, best_cost = k, cost
    return best


def change_point(bins, high, low):
    """(wall time, session bytes) where the rate moved from `high` to `low` (either direction)."""
    rates = [b.bytes for b in bins]
    falling = high > low
    k = two_level_split(rates if falling else [-r for r in rates], high if falling else -high,
                        low if falling else -low)
    k = min(max(k, 0), len(bins) - 1)

    def frac_at_high(b):  # share of the bin spent at the old rate
        return min(max((b.bytes - low) / (high - low), 0.0), 1.0) if high != low else 0.0

    if k > 0 and (1 - frac_at_high(bins[k - 1])) > frac_at_high(bins[k]):
        b = bins[k - 1]
    else:
        b = bins[k]
    f = frac_at_high(b)
    return b.wall_start + f, int(b.start_bytes + f * high)


class ThrottleDetector:
    """Baseline from the first usable bins, then a rolling-median test against it."""

    def __init__(self, threshold_percent, baseline_seconds, events=None, baseline_bps=None):
        self.set_threshold(threshold_percent)
        self.baseline_n = int(baseline_seconds)
        self.baseline_bps = baseline_bps
        self.events = events if events is not None else []
        self._baseline_bins = []
        self._history = deque(maxlen=HISTORY)
        self._event_rates = deque(maxlen=600)

    def set_threshold(self, threshold_percent):
        """A drop of this many percent below the baseline is a throttle (applies from the next bin)."""
        self.factor = 1 - threshold_percent / 100

    @property
    def open_event(self):
        return self.events[-1] if self.events and self.events[-1]["end"] is None else None

    def feed(self, b, iso):
        """Consider one closed bin; iso(epoch) formats event times."""
        if not b.usable:
            return
        if self.baseline_bps is None:
            self._baseline_bins.append(b.bytes)
            if len(self._baseline_bins) >= self.baseline_n:
                self.baseline_bps = statistics.median(self._baseline_bins)
            return
        self._history.append(b)
        recent = list(self._history)[-WINDOW:]
        if len(recent) < WINDOW:
            return
        median = statistics.median(x.bytes for x in recent)
        limit = self.factor * self.baseline_bps
        event = self.open_event
        if event is None and median < limit:
            low = statistics.median(x.bytes for x in recent if x.bytes < limit)
            onset, at_bytes = change_point(list(self._history), self.baseline_bps, low)
            self._event_rates.clear()
            self._event_rates.extend(x.bytes for x in self._history if x.wall_start >= onset - 1)
            self.events.append({
                "start": iso(onset), "at_bytes": at_bytes, "at_gb": round(at_bytes / 1e9, 4),
                "baseline_mbps": round(mbps(self.baseline_bps), 3),
                "throttled_mbps": round(mbps(statistics.median(self._event_rates)), 3),
                "detected_at": iso(b.wall_start + 1), "end": None, "end_at_bytes": None,
            })
            del self.events[:-100]  # bounded
        elif event is not None:
            self._event_rates.append(b.bytes)
            event["throttled_mbps"] = round(mbps(statistics.median(self._event_rates)), 3)
            if median >= limit:
                end, end_bytes = change_point(recent, event["throttled_mbps"] * 1e6 / 8,
                                              statistics.median(x.bytes for x in recent if x.bytes >= limit))
                event["end"], event["end_at_bytes"] = iso(end), end_bytes
