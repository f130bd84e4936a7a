"""Speed as the downloader reports it, and throttle detection on 1-second bins.

Definitions (documented in README):
- bins are 1 s of *active* time (pauses excluded); bytes of a sampling interval are split
  across the bins it overlaps in proportion to time;
- speed_mbps is the rate over the last RATE_WINDOW_S seconds; avg is session bytes / active
  time; peak is the highest closed bin;
- the first WARMUP_S seconds of a session and after every resume (TCP slow start) and every
  bin in which a stream was failing are not used for baseline or detection;
- baseline is the median of the first `baseline_seconds` usable bins;
- an event opens when the median of the last WINDOW usable bins falls below
  (1 - threshold/100) x baseline, and closes when it rises above it again. Its onset is
  back-dated to the change point found by a two-level fit, to a fraction of a bin.
"""
import statistics
from collections import deque
from dataclasses import dataclass

WARMUP_S = 2.0
RATE_WINDOW_S = 5.0
WINDOW = 7  # bins in the rolling median: dips up to 3 s never open an event
HISTORY = 16  # usable bins kept for the change-point search


def mbps(bytes_per_s):
    return bytes_per_s * 8 / 1e6


@dataclass
class Bin:
    index: int  # active second since session start
    start_bytes: int  # session bytes when the bin began
    bytes: float
    wall_start: float  # epoch seconds
    usable: bool


class SpeedMeter:
    """Turns (active time, session bytes) samples into a live rate and closed 1-s bins."""

    def __init__(self):
        self.bins_closed = 0
        self.peak_bps = 0.0
        self._recent = deque()  # (active_t, bytes) for the live rate
        self._bin_bytes = 0.0
        self._bin_start_bytes = 0
        self._bin_dirty = False
        self._last = None  # (active_t, bytes)
        self._warm_until = WARMUP_S

    def restart_warmup(self, active_t):
        """After a resume: the next WARMUP_S seconds are slow start again."""
        self._warm_until = active_t + WARMUP_S
        self._recent.clear()

    def mark_unhealthy(self):
        """A stream failed during the current bin: keep it out of baseline and detection."""
        self._bin_dirty = True

    def add(self, active_t, total_bytes, wall_now):
        """Record a sample; return the bins closed by it."""
        closed = []
        if self._last is None:
            self._last = (active_t, total_bytes)
            self._recent.append(self._last)
            return closed
        t0, b0 = self._last
        rate = (total_bytes - b0) / (active_t - t0) if active_t > t0 else 0.0
        t = t0
        while int(t) < int(active_t):  # the sample crosses one or more bin edges
            edge = int(t) + 1
            self._bin_bytes += rate * (edge - t)
            closed.append(self._close_bin(edge - 1, wall_now - (active_t - (edge - 1))))
            t = edge
        self._bin_bytes += rate * (active_t - t)
        self._last = (active_t, total_bytes)
        self._recent.append(self._last)
        while len(self._recent) > 2 and active_t - self._recent[1][0] >= RATE_WINDOW_S:
            self._recent.popleft()
        return closed

    def _close_bin(self, index, wall_start):
        b = Bin(index, self._bin_start_bytes, self._bin_bytes, wall_start,
                usable=index >= self._warm_until and not self._bin_dirty)
        self.bins_closed += 1
        self.peak_bps = max(self.peak_bps, self._bin_bytes)
        self._bin_start_bytes += round(self._bin_bytes)
        self._bin_bytes = 0.0
        self._bin_dirty = False
        return b

    def rate_bps(self):
        """Bytes/s over the last RATE_WINDOW_S seconds; 0 until two samples exist."""
        if len(self._recent) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._recent[0], self._recent[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


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
        self.factor = 1 - threshold_percent / 100
        self.baseline_n = int(baseline_seconds)
        self.baseline_bps = baseline_bps
        self.events = events if events is not None else []
        self._baseline_bins = []
        self._history = deque(maxlen=HISTORY)
        self._event_rates = deque(maxlen=600)

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
