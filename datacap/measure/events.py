"""The link events that are not throttles: outages, congestion, an initial burst.

Every event is a dict with `kind` (`throttle`, `outage`, `congestion`, `burst`), `start` and
`end` (ISO 8601; `end` null while open) and its own figures:

- outage: `at_bytes`, `duration_s`: OUTAGE_S or more seconds in which no bytes arrived;
- congestion: `baseline_mbps`, `low_mbps`, `high_mbps`, `median_mbps`, `spread_percent` (of
  3-s averages over the last CONGESTION_WINDOW_S: 10th to 90th percentile, as a share of the
  baseline). The link is congested while the middle half of those averages spans MIN_IQR of the
  baseline and the speed fell below SWING_LOW and came back above SWING_HIGH at least MIN_SWINGS
  times. An event ends when that has not been so for CALM_S seconds in a row (its `end` is the
  first of them): a lossy link hovering at the edge is one long event, not one a minute;
- burst: `bytes`, `burst_mbps`, `sustained_mbps`, `text`, `rest_s` and `came_back` (the refill
  check's rest and whether the fast rate came back after it; null until it knows).
"""
import statistics
from collections import deque

from datacap.measure.speed import mbps

OUTAGE_S = 5  # this many silent seconds in a row are an outage, not a slow second
SILENT_BYTES = 1  # a second with less than this is silent
CONGESTION_WINDOW_S = 120
SMOOTH_S = 3  # congestion looks at 3-s averages: a policer's 1-s jitter is not a swing
SWING_LOW, SWING_HIGH = 0.70, 0.85  # of the baseline: down below the first, back above the second
MIN_SWINGS = 2
MIN_IQR = 0.25  # middle half of the 3-s averages spans a quarter of the baseline: a few dips never do
MIN_SECONDS = 20
CALM_S = 45  # an open congestion event closes after this many calm seconds in a row


class OutageTracker:
    """Silent seconds: a short run is a slow stretch (0 B/s), a long one an outage."""

    def __init__(self, iso):
        self.iso = iso
        self.silent = []  # the current run of silent bins
        self.event = None
        self._t0 = None

    def silent_bin(self, b):
        """Add a silent bin; return a new outage event when the run becomes one."""
        self.silent.append(b)
        if self.event is None and len(self.silent) >= OUTAGE_S:
            first = self.silent[0]
            self.event = {"kind": "outage", "start": self.iso(first.wall_start), "at_bytes": first.start_bytes,
                          "end": None, "duration_s": None}
            self._t0 = first.wall_start
            return self.event
        return None

    def bytes_back(self, b):
        """Bytes arrived again: return (closed outage or None, the short silent run to measure)."""
        run, self.silent = self.silent, []
        event, self.event = self.event, None
        if event is None:
            return None, run
        event["end"] = self.iso(b.wall_start)
        event["duration_s"] = round(b.wall_start - self._t0, 1)
        return event, []


class CongestionTracker:
    """Speed that swings widely and keeps coming back near the baseline."""

    def __init__(self, iso):
        self.iso = iso
        self.bins = deque(maxlen=CONGESTION_WINDOW_S)
        self.event = None
        self.congested = False  # the last second's judgement (the throttle detector reads it)
        self._last_end = None
        self._calm_since = None  # the first of the calm seconds in a row while an event is open

    def feed(self, b, baseline):
        """One measured second with no throttle open; return a new congestion event when one opens."""
        self.bins.append(b)
        if len(self.bins) < MIN_SECONDS:
            return None
        smooth = smoothed([x.bytes for x in self.bins])
        deciles, quartiles = statistics.quantiles(smooth, n=10), statistics.quantiles(smooth, n=4)
        spread = (deciles[-1] - deciles[0]) / baseline
        self.congested = ((quartiles[-1] - quartiles[0]) / baseline >= MIN_IQR
                          and swings(smooth, baseline) >= MIN_SWINGS)
        opened = None
        if self.congested and self.event is None:
            start = max(self.bins[0].wall_start, self._last_end or 0)
            self.event = opened = {"kind": "congestion", "start": self.iso(start), "end": None}
        if self.event is not None:
            if self.congested:
                self._calm_since = None
                self.event.update(baseline_mbps=round(mbps(baseline), 3), low_mbps=round(mbps(deciles[0]), 3),
                                  high_mbps=round(mbps(deciles[-1]), 3),
                                  median_mbps=round(mbps(statistics.median(smooth)), 3),
                                  spread_percent=round(100 * spread, 1))
            elif self._calm_since is None:
                self._calm_since = b.wall_start
            elif b.wall_start - self._calm_since >= CALM_S - 1:
                self.event["end"] = self.iso(self._calm_since)
                self.event, self._last_end, self._calm_since = None, self._calm_since, None
        return opened

    def band_low(self, before_wall):
        """The low edge of the band the link swung in before `before_wall`: the 10th percentile of its
        3-s averages (bytes/s), or None with fewer than MIN_SECONDS seconds to judge."""
        rates = [x.bytes for x in self.bins if x.wall_start < before_wall]
        if len(rates) < MIN_SECONDS:
            return None
        return statistics.quantiles(smoothed(rates), n=10)[0]

    def restart_after(self, wall):
        """Forget the seconds before `wall` (a throttle or outage interrupted the picture)."""
        while self.bins and self.bins[0].wall_start < wall:
            self.bins.popleft()


def smoothed(rates):
    """The SMOOTH_S-second averages of a run of 1-s rates."""
    return [statistics.fmean(rates[i:i + SMOOTH_S]) for i in range(len(rates) - SMOOTH_S + 1)]


def swings(smooth, baseline):
    """How many times the speed fell below SWING_LOW x baseline and came back above SWING_HIGH x."""
    count, dipped = 0, False
    for r in smooth:
        if r < SWING_LOW * baseline:
            dipped = True
        elif dipped and r >= SWING_HIGH * baseline:
            count, dipped = count + 1, False
    return count


def burst_text(cand):
    return (f"~{cand.at_bytes / 1e6:.0f} MB at {mbps(cand.baseline_bps):.0f} Mbit/s, then {mbps(cand.low_bps):.0f} "
            f"Mbit/s sustained")


def burst_event(first, cand, iso, text):
    """The initial burst: from the first bytes to the change point; `came_back` once the refill check knows."""
    return {"kind": "burst", "start": iso(first.wall_start), "end": iso(cand.onset), "bytes": cand.at_bytes,
            "burst_mbps": round(mbps(cand.baseline_bps), 3), "sustained_mbps": round(mbps(cand.low_bps), 3),
            "text": text, "rest_s": None, "came_back": None}
