"""A probe: a short download that stops as soon as the link's rate is known, to spare the cap.

The rate is read in windows of at least MIN_WINDOW_S (and at least the time to first byte, about
two round trips, so a long-RTT link is not judged by its bursts). Slow start is over at the first
window that is not faster than the one before by more than GROWTH; from the start of that window
the estimate is bytes / time. The probe stops when the last SETTLE_ESTIMATES estimates agree
within ±SETTLE_TOLERANCE (half the ±5 % the figure must meet), or at the byte or time ceiling.
"""
import time
from dataclasses import dataclass

from datacap.measure.probe.streams import ProbeStreams

MIN_WINDOW_S = 0.3
GROWTH = 0.10  # a window this much faster than the last one is still slow start
SETTLE_ESTIMATES = 3
SETTLE_TOLERANCE = 0.025
MAX_SECONDS = 20.0  # a probe never runs longer (a 600 ms-RTT link settles in about 8 s)
NO_BYTES_S = 8.0  # nothing at all by then: the link is down, not slow
ERRORS_GIVE_UP_S = 2.0  # refused or unreachable, and not a byte since: an outage, no need to wait longer
SAMPLE_S = 0.02
PROBE_STREAMS = 2  # two streams leave slow start sooner than one and share out loss; few enough to stay light


class Settle:
    """Fed (seconds since the request, bytes so far); says when the rate has settled, and what it is."""

    def __init__(self):
        self.ttfb_s = None
        self.window_s = MIN_WINDOW_S
        self._edge = None  # (time, bytes) where the current window began
        self._last_rate = None
        self._first = None  # (time, bytes) of the first sample with data
        self._steady = None  # (time, bytes) where the measurement began (slow start over)
        self._estimates = []
        self.last = (0.0, 0)

    def add(self, t, total):
        """Record a sample; True once the rate has settled."""
        self.last = (t, total)
        if self.ttfb_s is None:
            if total <= 0:
                return False
            self.ttfb_s = t
            self.window_s = max(MIN_WINDOW_S, t)
            self._edge = self._first = (t, total)
            return False
        t0, b0 = self._edge
        if t - t0 < self.window_s:
            return False
        rate = (total - b0) / (t - t0)
        if self._steady is None and self._last_rate is not None and rate <= (1 + GROWTH) * self._last_rate:
            self._steady = self._edge  # this whole window was at full speed
        self._last_rate = rate
        self._edge = (t, total)
        if self._steady is not None:
            self._estimates.append(self.rate_bps())
        return self.settled

    @property
    def settled(self):
        recent = self._estimates[-SETTLE_ESTIMATES:]
        if len(recent) < SETTLE_ESTIMATES:
            return False
        mid = recent[-1]
        return mid > 0 and all(abs(r - mid) <= SETTLE_TOLERANCE * mid for r in recent)

    def rate_bps(self):
        """Bytes per second since slow start ended; before that, over everything since the first byte."""
        t, total = self.last
        start = self._steady or self._first
        if start is None or t <= start[0]:
            return None
        return (total - start[1]) / (t - start[0])


@dataclass
class Result:
    mbps: float = None
    ttfb_ms: float = None
    bytes: int = 0
    seconds: float = 0.0
    settled: bool = False
    stopped_by: str = None  # settled, bytes, time, cancelled, error
    error: str = None

    def as_dict(self):
        return dict(self.__dict__)


def measure(urls, max_bytes, max_seconds=MAX_SECONDS, streams=PROBE_STREAMS, cancelled=lambda: False,
            clock=time.monotonic, sleep=time.sleep, pool_factory=ProbeStreams):
    """Run one probe; the bytes it cost are counted whatever the outcome."""
    pool = pool_factory(urls, streams, max_bytes)
    settle = Settle()
    start = clock()
    pool.start()
    stopped_by = None
    try:
        while stopped_by is None:
            sleep(SAMPLE_S)
            t, total = clock() - start, pool.total_bytes()
            if settle.add(t, total):
                stopped_by = "settled"
            elif total >= max_bytes:
                stopped_by = "bytes"
            elif t >= max_seconds or (total == 0 and t >= NO_BYTES_S):
                stopped_by = "time"
            elif total == 0 and pool.last_error and t >= ERRORS_GIVE_UP_S:
                stopped_by = "error"
            elif cancelled():
                stopped_by = "cancelled"
    finally:
        pool.stop()
    return _result(settle, pool, stopped_by, clock() - start)


def _result(settle, pool, stopped_by, elapsed):
    nbytes = pool.total_bytes()
    rate = settle.rate_bps()
    err = pool.last_error
    if nbytes == 0:
        return Result(bytes=0, seconds=round(elapsed, 3), stopped_by="cancelled" if stopped_by == "cancelled" else "error",
                      error=(err or {}).get("message") or "no data")
    return Result(mbps=round(rate * 8 / 1e6, 3) if rate else None,
                  ttfb_ms=round(settle.ttfb_s * 1000, 1) if settle.ttfb_s is not None else None,
                  bytes=nbytes, seconds=round(elapsed, 3), settled=stopped_by == "settled",
                  stopped_by=stopped_by, error=(err or {}).get("message"))
