"""The link's normal speed: slow start is left out, then a rolling median of ordinary seconds, 5 s at a time.

- warm-up (after the start, a resume or an outage) lasts while the rate keeps rising: it ends at
  the first second that is not more than RISE above every earlier one, or after WARMUP_MAX_S;
- a second becomes *ordinary* LAG_S seconds after it was measured, and no sooner than the
  speed is back above the open level if it is below it (`hold`), so the seconds that are
  forming a throttle never pull the baseline down before the detector has decided; but a drop
  judged for HOLD_MAX_S without becoming a throttle is the link's speed: its older seconds
  become ordinary (before, a link swinging below the open level held an hour of seconds back
  and froze the baseline);
- the baseline is the median of the last WINDOW_S ordinary seconds taken BLOCK_S at a time
  (the median of their 5-s means; of the seconds themselves while there are fewer than three
  blocks), revisited every second while no event is open: a few odd seconds never move it, and on
  one lossy stream, whose seconds swing widely, it is what the link delivers (the median of the
  seconds sits 7-10 % above that). Until there are `baseline_seconds` ordinary seconds it is the
  median of the first `baseline_seconds` measured seconds.
"""
import statistics
from collections import deque

from datacap.measure.throttle import LONG_PLATEAU_S

RISE = 1.10  # a second this much faster than every earlier one: TCP is still ramping up
WARMUP_MAX_S = 30  # a rate that keeps creeping up this long is the link's, not slow start's
LAG_S = 12  # a throttle's plateau (measure/throttle.py) judges against the baseline of its onset
WINDOW_S = 60
BLOCK_S = 5
HOLD_MAX_S = 2 * LONG_PLATEAU_S  # the detector decides a drop within its longest plateau; twice that is no throttle


def block_median(rates, count):
    """The median of the BLOCK_S-second means of rates, the last `count` seconds ever taken.

    Blocks are counted from the first second ever taken, and only whole ones are used, so the
    figure moves when a block is complete, not with every second."""
    r = list(rates)
    r = r[:len(r) - count % BLOCK_S]
    if len(r) < 3 * BLOCK_S:
        return statistics.median(rates)
    return statistics.median(statistics.fmean(r[i:i + BLOCK_S]) for i in range(len(r) % BLOCK_S, len(r), BLOCK_S))


class Baseline:
    """Warm-up, then the rolling median of ordinary seconds, 5 s at a time."""

    def __init__(self, baseline_seconds):
        self.n = int(baseline_seconds)
        self.warming = True
        self._warm = []
        self._first = []  # the first n measured seconds: the provisional baseline
        self._pending = deque()  # bins younger than LAG_S
        self._ordinary = deque(maxlen=WINDOW_S)
        self._taken = 0  # ordinary seconds ever taken: where the 5-s blocks begin and end
        self.value = None

    def start_warmup(self):
        """Slow start begins again (resume, link back after an outage)."""
        self.warming, self._warm = True, []

    def warming_up(self, b):
        """True while `b` is still part of slow start (then it is not a measurement)."""
        if not self.warming:
            return False
        rising = not self._warm or b.bytes > RISE * max(self._warm)
        self._warm.append(b.bytes)
        if rising and len(self._warm) < WARMUP_MAX_S:
            return True
        self.warming = False
        return False

    def add(self, b, hold=False):
        """A measured second with no event open; `hold` while a drop is being judged."""
        if len(self._first) < self.n:
            self._first.append(b.bytes)
        self._pending.append(b)
        lag = HOLD_MAX_S if hold else LAG_S
        while self._pending and self._pending[-1].index - self._pending[0].index >= lag:
            self._take(self._pending.popleft())
        self._update()

    def claim(self, since_index):
        """An event starts at bin `since_index`: younger pending seconds are the event's, older ones ordinary."""
        while self._pending and self._pending[0].index < since_index:
            self._take(self._pending.popleft())
        self._pending.clear()
        self._update()

    def reset_to(self, bins):
        """After an initial burst: the sustained seconds alone are the link's normal speed."""
        self._pending.clear()
        self._ordinary.clear()
        self._ordinary.extend(b.bytes for b in bins)
        self._taken = len(bins)
        self._first = [b.bytes for b in bins][:self.n]
        self.value = block_median(self._ordinary, self._taken) if self._ordinary else None

    def _take(self, b):
        self._ordinary.append(b.bytes)
        self._taken += 1

    def _update(self):
        if len(self._ordinary) >= self.n:
            self.value = block_median(self._ordinary, self._taken)
        elif len(self._first) >= self.n:
            self.value = statistics.median(self._first)
