"""Speed as the downloader reports it: 1-second bins of active time, the live rate, the peak.

- bins are 1 s of *active* time (pauses excluded); bytes of a sampling interval are split
  across the bins it overlaps in proportion to time;
- speed_mbps is the rate over the last RATE_WINDOW_S seconds; avg is session bytes / active
  time; peak is the highest closed bin;
- a bin in which a stream was in back-off after an error is not usable for baseline or
  detection; a silent stream is not an error (on a slow link some stream is always silent);
- the first bin of a session and after every resume carries `restart`: slow start begins again
  (measure/baseline.py decides when it is over).
"""
from collections import deque
from dataclasses import dataclass

RATE_WINDOW_S = 5.0


def mbps(bytes_per_s):
    return bytes_per_s * 8 / 1e6


@dataclass
class Bin:
    index: int  # active second since session start
    start_bytes: int  # session bytes when the bin began
    bytes: float
    wall_start: float  # epoch seconds
    usable: bool  # no stream was in back-off
    restart: bool = False  # the first bin of the session or after a resume


class SpeedMeter:
    """Turns (active time, session bytes) samples into a live rate and closed 1-s bins."""

    def __init__(self):
        self.peak_bps = 0.0
        self._recent = deque()  # (active_t, bytes) for the live rate
        self._bin_bytes = 0.0
        self._bin_start_bytes = 0
        self._bin_dirty = False
        self._last = None  # (active_t, bytes)
        self._restart = True

    def restart_warmup(self):
        """After a resume: the next bin starts a new slow start."""
        self._restart = True
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
                usable=not self._bin_dirty, restart=self._restart)
        self._restart = False
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
