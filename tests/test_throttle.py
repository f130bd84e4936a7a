"""Throttle detection on synthetic links: the meter and the detector together, on a fake clock."""
import random
from datetime import datetime, timezone

import pytest

from datacap.measure.speed import SpeedMeter
from datacap.measure.monitor import LinkMonitor
from datacap.measure.throttle import two_level_split

MBIT = 1e6 / 8  # bytes per second in 1 Mbit/s
WALL0 = 1_700_000_000.0


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def run(rate_at, seconds, threshold=50, baseline_seconds=10, step=0.1):
    """Drive SpeedMeter + ThrottleDetector with exact cumulative bytes of a rate function (bytes/s)."""
    meter, det = SpeedMeter(), LinkMonitor(threshold, baseline_seconds, iso)
    total, t = 0.0, 0.0
    meter.add(0.0, 0, WALL0)
    while t < seconds:
        # integrate the rate over this step in small slices so steps inside a sample are exact
        for k in range(10):
            total += rate_at(t + (k + 0.5) * step / 10) * step / 10
        t = round(t + step, 6)
        for b in meter.add(t, int(total), WALL0 + t):
            det.feed(b, iso)
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
