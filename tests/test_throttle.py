"""Throttle detection on synthetic links: the meter and the detector together, on a fake clock."""
import random
from datetime import datetime, timezone

import pytest

from datacap.measure.speed import SpeedMeter
from datacap.measure.monitor import LinkMonitor
from datacap.measure.plateau import two_level_split

MBIT = 1e6 / 8  # bytes per second in 1 Mbit/s
WALL0 = 1_700_000_000.0


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


class RateLink:
    """A link whose rate is a function of time (congestion, a shaper someone switches); it goes on during a rest."""

    def __init__(self, rate_at):
        self.rate_at, self.t = rate_at, 0.0

    def send(self, dt):
        # integrate the rate over this step in small slices so steps inside a sample are exact
        n = sum(self.rate_at(self.t + (k + 0.5) * dt / 10) * dt / 10 for k in range(10))
        self.t = round(self.t + dt, 6)
        return n

    def idle(self, seconds):
        self.t += seconds


class VolumeThrottle:
    """`fast` Mbit/s until `after_bytes` have crossed the line, then `slow` for good, rested or not."""

    def __init__(self, fast, slow, after_bytes):
        self.fast, self.slow, self.after, self.sent = fast * MBIT, slow * MBIT, after_bytes, 0.0

    def send(self, dt):
        n = min(self.fast * dt, max(0.0, self.after - self.sent))  # fast up to the mark ...
        n += self.slow * (dt - n / self.fast)  # ... and slow for the rest of the step
        self.sent += n
        return n

    def idle(self, seconds):
        pass


class TokenBucket:
    """A speed boost: `peak` Mbit/s while the bucket has tokens, `rate` after; it fills at `rate`, also at rest."""

    def __init__(self, peak, rate, bucket_bytes):
        self.peak, self.rate, self.size = peak * MBIT, rate * MBIT, bucket_bytes
        self.tokens = bucket_bytes

    def send(self, dt):
        self.tokens = min(self.size, self.tokens + self.rate * dt)
        n = min(self.peak * dt, max(self.tokens, self.rate * dt))
        self.tokens -= min(n, self.tokens)
        return n

    def idle(self, seconds):
        self.tokens = min(self.size, self.tokens + self.rate * seconds)


def drive(link, seconds, threshold=50, baseline_seconds=10, step=0.1):
    """SpeedMeter + LinkMonitor on a fake clock, fed `link.send(step)` bytes per sample; a rest when the
    monitor asks, as the session does it (streams paused: link.idle(s); the wall clock runs on, the test's
    does not; the next bin starts a slow start). Returns (meter, monitor, [(wall second, rest s)])."""
    meter, det = SpeedMeter(), LinkMonitor(threshold, baseline_seconds, iso)
    total = active = wall = 0.0
    rests = []
    meter.add(0.0, 0, WALL0)
    while active < seconds:
        if det.rest_wanted:
            rests.append((wall, det.rest_wanted))
            link.idle(det.rest_wanted)
            wall += det.rest_wanted
            det.resting()
            meter.restart_warmup()
        total += link.send(step)
        active, wall = round(active + step, 6), wall + step
        for b in meter.add(active, int(total), WALL0 + wall):
            det.feed(b, iso)
    return meter, det, rests


def run(rate_at, seconds, threshold=50, baseline_seconds=10, step=0.1):
    """drive() on a link with this rate (bytes/s) at each second of the test."""
    meter, det, _ = drive(RateLink(rate_at), seconds, threshold, baseline_seconds, step)
    return meter, det


def noisy(mbps, noise, seed=7):
    rng = random.Random(seed)
    factors = {}

    def rate(t):
        s = int(t)
        if s not in factors:
            factors[s] = 1 + rng.uniform(-noise, noise)
        return mbps * MBIT * factors[s]
    return rate


def test_steady_link_with_15_percent_noise_and_2s_dips_raises_no_event_in_10_minutes():
    base = noisy(80, 0.15)

    def rate(t):
        return base(t) * (0.1 if int(t) % 45 in (20, 21) else 1.0)  # a 2-second dip every 45 s
    meter, det = run(rate, 600)
    assert det.baseline_bps == pytest.approx(80 * MBIT, rel=0.1)
    assert det.events == []


def test_step_drop_80_to_16_opens_event_with_onset_mark_and_rate():
    drop_t = 40.37
    mark = 80 * MBIT * drop_t
    meter, det = run(lambda t: (80 if t < drop_t else 16) * MBIT, 70)
    assert len(det.events) == 1
    ev = det.events[0]
    assert ev["end"] is None and det.open_event is ev
    assert abs(ev["at_bytes"] - mark) / mark < 0.02
    assert ev["throttled_mbps"] == pytest.approx(16, rel=0.10)
    assert ev["baseline_mbps"] == pytest.approx(80, rel=0.02)
    onset = datetime.fromisoformat(ev["start"]).timestamp() - WALL0
    detected = datetime.fromisoformat(ev["detected_at"]).timestamp() - WALL0
    assert abs(onset - drop_t) < 0.5  # back-dated to the change point, not the detection time
    assert detected - drop_t <= 15


def test_step_drop_with_noise_still_marks_within_2_percent():
    base = noisy(80, 0.15, seed=3)
    drop_t = 63.6
    meter, det = run(lambda t: base(t) * (1 if t < drop_t else 0.2), 90)
    ev = det.events[0]
    true_mark = sum(base(s / 1000) / 1000 for s in range(int(drop_t * 1000)))
    assert abs(ev["at_bytes"] - true_mark) / true_mark < 0.02
    assert ev["throttled_mbps"] == pytest.approx(16, rel=0.10)


def test_recovery_closes_the_event():
    meter, det = run(lambda t: (16 if 30 <= t < 60 else 80) * MBIT, 90)
    assert len(det.events) == 1
    ev = det.events[0]
    assert ev["end"] is not None and det.open_event is None
    end = datetime.fromisoformat(ev["end"]).timestamp() - WALL0
    assert abs(end - 60) < 1.5


def test_gradual_decline_below_threshold_is_detected_once():
    meter, det = run(lambda t: max(10, 80 - max(0, t - 20) * 1.5) * MBIT, 90)
    assert len(det.events) == 1
    onset = datetime.fromisoformat(det.events[0]["start"]).timestamp() - WALL0
    assert 20 <= onset <= 60


def test_short_dips_never_open_an_event():
    meter, det = run(lambda t: (5 if int(t) in (30, 31, 32, 50) else 80) * MBIT, 80)
    assert det.events == []


def test_drop_smaller_than_threshold_is_not_throttling():
    meter, det = run(lambda t: (80 if t < 30 else 50) * MBIT, 80)  # -37.5 % with a 50 % threshold
    assert det.events == []


def test_slow_start_seconds_do_not_count_toward_baseline():
    meter, det = run(lambda t: (8 if t < 2 else 80) * MBIT, 20)
    assert det.baseline_bps == pytest.approx(80 * MBIT, rel=0.01)


def test_speed_is_recent_rate_and_peak_is_best_bin():
    meter, det = run(lambda t: (100 if t < 10 else 40) * MBIT, 20)
    assert meter.rate_bps() == pytest.approx(40 * MBIT, rel=0.01)
    assert meter.peak_bps == pytest.approx(100 * MBIT, rel=0.01)


def test_meter_splits_a_sample_across_bin_edges_in_proportion():
    m = SpeedMeter()
    m.add(0.0, 0, WALL0)
    closed = m.add(2.5, 2500, WALL0 + 2.5)
    assert [b.bytes for b in closed] == pytest.approx([1000, 1000])
    assert [b.start_bytes for b in closed] == [0, 1000]


def test_bins_from_failing_streams_are_not_used():
    meter, det = SpeedMeter(), LinkMonitor(50, 3, iso)
    meter.add(0.0, 0, WALL0)
    for s in range(1, 30):
        if s > 15:
            meter.mark_unhealthy()  # every later bin had a stream in back-off
        for b in meter.add(float(s), int(s * 80 * MBIT if s <= 15 else 15 * 80 * MBIT), WALL0 + s):
            det.feed(b, iso)
    assert det.events == []


def test_two_level_split_finds_the_step():
    assert two_level_split([10, 11, 9, 10, 2, 2, 3, 2], 10, 2) == 4
