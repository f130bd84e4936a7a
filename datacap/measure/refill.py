"""An early drop: a speed boost running out, or a volume throttle? Rest the line, see if the fast rate comes back.

A speed boost is a token bucket: it fills again while the line rests. A volume throttle (a line
that was near its threshold when the test began) does not come back. When the monitor finds an
early drop that looks like a boost (measure/monitor.py), the session rests the line (every stream
paused, the test's clock stopped) for `rest_s`: the time the sustained rate takes to carry the
burst's bytes, which fills a bucket of that size again (REST_MIN_S to REST_MAX_S). Then, slow start
included, the fast rate is back when FAST_RUN seconds in a row reach halfway between the sustained
and the burst rate within the first WATCH_S measured seconds: a boost. When instead every one of
those seconds is back at the sustained level (within SAME), the fast rate is gone for good: a
throttle from the change point. Anything else (a swinging link) is "unsure", told as a burst as
before the check. After a boost the refilled bucket drains; those seconds are the boost's.
"""
from datacap.measure.speed import mbps

REST_MIN_S, REST_MAX_S = 20, 60
WATCH_S = 8  # measured seconds after slow start
FAST_RUN = 2  # seconds in a row at the fast rate: a boost's bucket, not one lucky second
SAME = 0.15  # a second this close to the sustained rate is still at it
DRAINED_RUN = 3  # seconds in a row back below halfway: the refilled bucket is empty again
DRAIN_MAX_S = 60  # a fast rate that lasts longer is the link's own


class RefillCheck:
    """wanted -> resting -> watching -> (boost) draining -> done, or (throttle, unsure) done."""

    def __init__(self, cand):
        self.cand = cand
        self.rest_s = round(min(REST_MAX_S, max(REST_MIN_S, cand.at_bytes / max(cand.low_bps, 1.0))))
        self.state = "wanted"
        self.verdict = None  # "boost", "throttle" or "unsure"
        self.seen = []  # measured seconds after the rest
        self._measured = self._run = 0

    @property
    def halfway(self):
        return (self.cand.baseline_bps + self.cand.low_bps) / 2

    def rested(self):
        """The session has rested the line; what comes next is the answer."""
        if self.state == "resting":
            self.state = "watching"

    def watch(self, b, warming):
        """One second with bytes after the rest (slow start too); returns the verdict once there is one."""
        self._run = self._run + 1 if b.bytes >= self.halfway else 0
        if not warming:
            self._measured += 1
            self.seen.append(b)
        if self._run >= FAST_RUN:
            self.state, self.verdict, self._run = "draining", "boost", 0
        elif self._measured >= WATCH_S:
            low = self.cand.low_bps
            same = all(abs(x.bytes - low) <= SAME * low for x in self.seen)
            self.state, self.verdict = "done", "throttle" if same else "unsure"
        return self.verdict

    def drain(self, b):
        """One measured second after a boost came back; True once the bucket is empty again (or the
        fast rate has lasted DRAIN_MAX_S: it is the link's own)."""
        self.seen.append(b)
        self._run = self._run + 1 if b.bytes < self.halfway else 0
        if self._run >= DRAINED_RUN or len(self.seen) >= DRAIN_MAX_S:
            self.state = "done"
        return self.state == "done"

    def came_back_for_good(self):
        return self._run < DRAINED_RUN

    def text(self):
        c = self.cand
        fast, slow = mbps(c.baseline_bps), mbps(c.low_bps)
        if self.verdict == "boost":
            return (f"speed boost: ~{c.at_bytes / 1e6:.0f} MB at {fast:.0f} Mbit/s, fast again after {self.rest_s} s "
                    f"of rest")
        if self.verdict == "throttle":
            return (f"throttled from the start of this test at {c.at_bytes / 1e9:.2f} GB: {fast:.0f} → {slow:.0f} "
                    f"Mbit/s; the fast rate did not come back after {self.rest_s} s of rest")
        return (f"~{c.at_bytes / 1e6:.0f} MB at {fast:.0f} Mbit/s, then {slow:.0f} Mbit/s; resting {self.rest_s} s "
                f"to see whether the fast rate comes back (a speed boost does, a volume throttle does not)")
