"""The probe's stopping rule on simulated links: slow start, then a steady rate; ceilings; errors."""
import pytest

from datacap.measure.probe import measure as probe
from datacap.measure.probe import streams as probe_streams


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


class SimulatedLink:
    """A pool whose bytes follow TCP slow start (the window doubles every RTT) up to `mbit`."""

    def __init__(self, clock, mbit, rtt_s, jitter=None, fail=False):
        self.clock, self.rate, self.rtt, self.jitter, self.fail = clock, mbit * 1e6 / 8, rtt_s, jitter, fail
        self.last_error = {"message": "connection refused"} if fail else None

    def __call__(self, urls, n, limit):
        self.n, self.limit, self.started = n, limit, None
        return self

    def start(self):
        self.started = self.clock()

    def stop(self):
        self.stopped_at = self.clock()

    def _bytes(self, t):
        t -= 2 * self.rtt  # connect, then the request
        if t <= 0 or self.fail:
            return 0
        total, window, step = 0.0, 14600.0 * self.n, 0.001
        k = 0.0
        while k < t:
            rate = min(self.rate, window / self.rtt) if self.rtt else self.rate
            if self.jitter:
                rate *= self.jitter(int(k))
            total += rate * step
            if self.rtt and window / self.rtt < self.rate:
                window *= 2 ** (step / self.rtt)
            k += step
        return total

    def total_bytes(self):
        return int(min(self.limit, self._bytes(self.clock() - self.started)))


def run(link, clock, max_bytes=10 ** 10, **kw):
    return probe.measure(["http://isp/"], max_bytes, clock=clock, sleep=clock.sleep, pool_factory=link, **kw)


@pytest.mark.parametrize("mbit, rtt, seconds", [(80, 0.001, 4), (1000, 0.0005, 3), (80, 0.03, 4), (10, 0.6, 20)])
def test_probe_settles_within_five_percent_and_stops_early(mbit, rtt, seconds):
    clock = Clock()
    r = run(SimulatedLink(clock, mbit, rtt), clock)
    assert r.stopped_by == "settled" and r.settled
    assert abs(r.mbps / mbit - 1) <= 0.05, r
    assert r.bytes <= seconds * mbit * 1e6 / 8, f"{r.bytes / (mbit * 1e6 / 8):.2f} s of line rate"
    assert r.ttfb_ms == pytest.approx(2 * rtt * 1000, abs=25)


def test_probe_stops_at_its_byte_ceiling_and_says_it_did_not_settle():
    clock = Clock()
    r = run(SimulatedLink(clock, 1000, 0.0005), clock, max_bytes=5_000_000)
    assert r.stopped_by == "bytes" and not r.settled and r.bytes == 5_000_000
    assert r.mbps is not None


def test_probe_on_a_jittery_link_stops_at_the_time_ceiling_with_its_best_estimate():
    clock = Clock()
    swing = lambda second: 1.5 if second % 2 else 0.5  # noqa: E731  +-50 % every other second
    r = run(SimulatedLink(clock, 50, 0.01, jitter=swing), clock, max_seconds=4)
    assert r.stopped_by in ("time", "settled")
    assert abs(r.mbps / 50 - 1) <= 0.25


def test_probe_on_a_dead_link_gives_up_and_costs_nothing():
    clock = Clock()
    r = run(SimulatedLink(clock, 80, 0.01, fail=True), clock)
    assert r.stopped_by == "error" and r.bytes == 0 and r.mbps is None
    assert r.error == "connection refused"
    assert r.seconds <= probe.ERRORS_GIVE_UP_S + 0.1


def test_probe_cancelled_by_a_signal_keeps_its_bytes():
    clock = Clock()
    r = run(SimulatedLink(clock, 10, 0.6), clock, cancelled=lambda: clock() > 3.0)
    assert r.stopped_by == "cancelled" and r.bytes > 0


def test_real_probe_streams_stop_at_the_byte_ceiling(fake_isp):
    isp = fake_isp(rate_mbps=400)
    r = probe.measure([isp.url()], 3_000_000)
    # each stream stops within its last read: at most one read of another stream past the ceiling
    assert r.stopped_by == "bytes" and 3_000_000 <= r.bytes <= 3_000_000 + probe_streams.READ_BYTES
    assert isp.link.sent >= r.bytes
