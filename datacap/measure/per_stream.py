"""Per-stream speeds, and whether the ISP limits each connection rather than the line.

Streams that share one bottleneck trade bandwidth: when one speeds up another slows down, so
their sum is steadier than each of them (the variance of the sum is well below the sum of their
variances). Streams that each meet their own limit do not trade: each is flat on its own and
the variances simply add. A per-connection limit is reported when, over the last WINDOW_S
seconds, every stream ran at about the same rate (within EQUAL) and the variance of the sum is at
least INDEPENDENT x the sum of the variances: "limited per connection to ~X Mbit/s".
"""
import statistics
from collections import deque

from datacap.measure.speed import mbps

WINDOW_S = 20
EQUAL = 0.10  # every stream within 10 % of their mean
INDEPENDENT = 0.5


class PerStreamMeter:
    """Samples the pool's per-stream byte counts; 1-s rates per stream over exact intervals."""

    def __init__(self, n):
        self.n = n
        self.rates = deque(maxlen=WINDOW_S)  # per-stream bytes/s, one row per second
        self._last = None  # (active_t, counts)

    def sample(self, active_t, counts, usable=True):
        """Call every tick; a row is recorded for each whole second (a pause or back-off drops the row)."""
        counts = tuple(counts)
        if self._last is None or not usable:
            self._last = (active_t, counts)
            return
        t0, c0 = self._last
        if active_t - t0 < 1.0:
            return
        self.rates.append([(b - a) / (active_t - t0) for a, b in zip(c0, counts)])
        self._last = (active_t, counts)

    def restart(self):
        self.rates.clear()
        self._last = None

    def speeds_mbps(self):
        """Each stream's rate over the last 5 s."""
        rows = list(self.rates)[-5:]
        return [round(mbps(statistics.fmean(col)), 3) for col in zip(*rows)] if rows else []

    def per_connection_mbps(self):
        """The per-connection limit in Mbit/s when the streams show one, else None."""
        if self.n < 2 or len(self.rates) < WINDOW_S:
            return None
        cols = list(zip(*self.rates))
        means = [statistics.fmean(c) for c in cols]
        mean = statistics.fmean(means)
        if mean <= 0 or any(abs(m - mean) > EQUAL * mean for m in means):
            return None
        parts = sum(statistics.pvariance(c) for c in cols)
        whole = statistics.pvariance([sum(row) for row in self.rates])
        if parts <= 0 or whole < INDEPENDENT * parts:
            return None
        return round(mbps(statistics.median(means)), 3)
