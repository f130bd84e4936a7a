"""stop_at_cap: end the test when the cycle reaches the cap, never a minute late.

The cycle's figure is the collector's live count (at most one interval old); the bytes this session
moved since that count was taken are added, so at 1 Gbit/s the test stops within a check period of
the cap. Bytes the collector does not count (a test over loopback) only make it stop a little early.
"""
from collections import deque
from datetime import datetime

from datacap.usage.current import CycleReader

CHECK_S = 0.5
SAMPLES_KEPT = 200  # (wall, session bytes) at each tick: 20 s at 10 ticks a second


class CapGuard:
    def __init__(self, data_dir, now=lambda: datetime.now().astimezone()):
        self.cycle = CycleReader(data_dir)
        self.now = now
        self.samples = deque(maxlen=SAMPLES_KEPT)
        self._checked_at = None

    def _bytes_at(self, ts):
        """Session bytes at wall time ts (the oldest sample when ts is older: stopping early, never late)."""
        found = self.samples[0][1] if self.samples else 0
        for wall, total in self.samples:
            if wall > ts:
                break
            found = total
        return found

    def reached(self, cfg, total, wall, mono):
        """True when the cycle, counting this session's newest bytes, has reached the cap."""
        self.samples.append((wall, total))
        if self._checked_at is not None and mono - self._checked_at < CHECK_S:
            return False
        self._checked_at = mono
        summary, at = self.cycle.summary_at(cfg, self.now())
        newer = total - self._bytes_at(at) if at is not None else 0
        return summary["used_bytes"] + max(0, newer) >= summary["cap_bytes"]
