"""stop_at_cap: end the test when its line's cycle reaches the cap, never late, whatever the collector does.

The cycle's figure is the collector's count (its live file, at most one interval old, or the ledger
when the collector is dead, stopped or slow); the bytes this session moved since the instant that
count holds every byte up to are added. The guard remembers the session's bytes at every tick for
the last 20 s and once a second (thinned as the session grows) since it began, so a count of any
age finds the session's bytes at or before it: an older count only makes the test stop earlier.
Bytes the collector does not count (a test over loopback) also only make it stop a little early.
"""
import bisect
from collections import deque
from datetime import datetime

from datacap.usage.current import CycleReader

CHECK_S = 0.5
# The counters see the test's bytes on the wire: payload + Ethernet/IP/TCP headers (1514 per 1448) and the
# ACKs going back. Counting the session's bytes since the count at this rate makes it stop early, never late.
WIRE_PER_PAYLOAD = 1.07
RECENT_KEPT = 200  # (wall, session bytes) at each tick: 20 s at 10 ticks a second
COARSE_KEPT = 4096  # one a second, then one every 2, 4, ... s: the whole session


class SessionBytes:
    """The session's byte count at any past instant, rounded down to one we saw (so never too high)."""

    def __init__(self, started_wall=None):
        self.recent = deque(maxlen=RECENT_KEPT)
        self.coarse_t, self.coarse_n = ([started_wall], [0]) if started_wall is not None else ([], [])
        self._step = 1.0

    def add(self, wall, total):
        self.recent.append((wall, total))
        if not self.coarse_t or wall - self.coarse_t[-1] >= self._step:
            self.coarse_t.append(wall)
            self.coarse_n.append(total)
            if len(self.coarse_t) > COARSE_KEPT:  # keeps the first: the session's start
                self.coarse_t, self.coarse_n = self.coarse_t[::2], self.coarse_n[::2]
                self._step *= 2

    def at(self, ts):
        """Bytes at wall time ts: 0 before the session began."""
        if self.recent and ts >= self.recent[0][0]:
            found = self.recent[0][1]
            for wall, total in self.recent:
                if wall > ts:
                    break
                found = total
            return found
        i = bisect.bisect_right(self.coarse_t, ts) - 1
        return self.coarse_n[i] if i >= 0 else 0


class CapGuard:
    def __init__(self, data_dir, started_wall=None, now=lambda: datetime.now().astimezone()):
        self.cycle = CycleReader(data_dir)
        self.now = now
        self.session = SessionBytes(started_wall)
        self.stop = None  # what it stopped on: the figure, the count's age, in words
        self._checked_at = None

    def reached(self, cfg, total, wall, mono, line=None):
        """True when the cycle, counting this session's bytes since the collector's count, has reached the cap."""
        self.session.add(wall, total)
        if self._checked_at is not None and mono - self._checked_at < CHECK_S:
            return False
        self._checked_at = mono
        summary, at = self.cycle.summary_at(cfg, self.now(), line)
        since = int(WIRE_PER_PAYLOAD * (total - self.session.at(at) if at is not None else total))
        if summary["used_bytes"] + since < summary["cap_bytes"] and not summary["cap_reached"]:
            return False
        self.stop = _stop(summary, at, since)
        return True


def _stop(s, at, since):
    """downloader.json's cap_stop: the figure the guard stopped on, and in words."""
    count = "no count from the collector yet" if at is None else (
        f"datacap's count as of {datetime.fromtimestamp(at).astimezone():%H:%M:%S}"
        + (" (live)" if s["live"] else ", the collector not counting now"))
    words = (f"the prepaid bucket expired on {s['end']} ({count})" if s["expired"] else
             f"{(s['used_bytes'] + since) / 1e9:.2f} of {s['cap_bytes'] / 1e9:g} GB: {count}, "
             f"plus this test's {since / 1e9:.2f} GB since, headers included")
    return {"used_bytes": s["used_bytes"], "session_bytes_since": since, "cap_bytes": s["cap_bytes"],
            "count_as_of": s["as_of"], "live": s["live"], "expired": s["expired"], "words": words}
