"""The detector on the shapes of real links (threshold's edge, policer, outages, congestion, bursts, slow
start), on a fake clock with synthetic bins; tests/test_links.py runs a few of them on real links."""
import math
import random
import statistics
from datetime import datetime

import pytest

from datacap.measure import baseline
from test_throttle import MBIT, WALL0, TokenBucket, drive, noisy, run


def seconds_of(iso_text):
    return datetime.fromisoformat(iso_text).timestamp() - WALL0


def kinds(det, kind):
    return [e for e in det.all_events if e["kind"] == kind]


def assert_never_overlap(events):
    for a, b in zip(events, events[1:]):
        assert a["end"] is not None and seconds_of(b["start"]) >= seconds_of(a["end"]), (a, b)


def test_throttle_at_the_thresholds_edge_is_exactly_one_event():
    for seed in range(6):
        base = noisy(80, 0.05, seed=seed)
        drop_t = 38.2  # 80 -> 40 Mbit/s: exactly the default 50 %
        meter, det = run(lambda t: base(t) * (1 if t < drop_t else 0.5), 120)
        assert len(det.events) == 1, (seed, det.events)
        ev = det.events[0]
        assert abs(seconds_of(ev["start"]) - drop_t) < 1.0
        assert seconds_of(ev["detected_at"]) - drop_t <= 15  # one level: a shaper, not a congested link's swings
        assert ev["throttled_mbps"] == pytest.approx(40, rel=0.10)


def test_a_throttle_that_hovers_near_the_open_level_never_splits_into_several_events():
    base = noisy(80, 0.15, seed=5)
    meter, det = run(lambda t: base(t) * (1 if t < 30 else 0.4 if t < 50 else 0.45 if int(t) % 4 else 0.6), 180)
    assert len(det.events) == 1 and det.events[0]["end"] is None


def test_recovery_closes_only_when_clearly_back_and_a_second_throttle_starts_after_it():
    def rate(t):
        return (16 if 30 <= t < 60 else 45 if 60 <= t < 80 else 16 if 110 <= t < 140 else 80) * MBIT
    meter, det = run(rate, 170)
    assert len(det.events) == 2  # 45 Mbit/s is above the open level but not clearly back
    first, second = det.events
    assert abs(seconds_of(first["end"]) - 80) < 1.5
    assert abs(seconds_of(second["start"]) - 110) < 1.0
    assert_never_overlap(det.events)


@pytest.mark.parametrize("seed", range(4))
def test_a_throttle_in_two_steps_is_two_events_each_with_its_onset_and_rates(seed):
    base = noisy(1, 0.03, seed=seed)

    def mbit(t):
        return 80 if t < 40.4 else 20 if t < 85.6 else 4
    meter, det = run(lambda t: base(t) * mbit(t), 140)
    first, second = det.events  # before: one event, "throttled 10.8 Mbit/s", the second onset nowhere
    for ev, at_t, before, after in ((first, 40.4, 80, 20), (second, 85.6, 20, 4)):
        mark = sum(base(s / 100) * mbit(s / 100) / 100 for s in range(int(at_t * 100)))
        assert abs(ev["at_bytes"] - mark) / mark < 0.02, (ev, mark)
        assert ev["baseline_mbps"] == pytest.approx(before, rel=0.10)
        assert ev["throttled_mbps"] == pytest.approx(after, rel=0.10)
        assert seconds_of(ev["detected_at"]) - at_t <= 15
    assert first["end"] == second["start"] and first["end_at_bytes"] == second["at_bytes"] and second["step"] == 2
    assert second["end"] is None and det.open_event is second
    assert_never_overlap(det.events)


def test_128_kbit_policer_with_silent_seconds_is_found_within_30_s():
    rng = random.Random(4)
    drop_t = 45.0
    pattern = {}

    def rate(t):  # after the drop: bursty arrivals, about one second in six has no bytes at all
        if t < drop_t:
            return 10 * MBIT
        s = int(t)
        if s not in pattern:
            pattern[s] = 0.0 if rng.random() < 1 / 6 else rng.uniform(0.5, 1.5) * 0.128 * MBIT * 6 / 5
        return pattern[s]
    meter, det = run(rate, 120)
    assert len(det.events) == 1, det.all_events
    ev = det.events[0]
    assert seconds_of(ev["detected_at"]) - drop_t <= 30
    assert ev["throttled_mbps"] == pytest.approx(0.128, rel=0.10)
    assert kinds(det, "outage") == []


def test_the_old_rates_bytes_tcp_hands_over_late_are_not_the_throttled_rate():
    rng, drop_t, policed = random.Random(5), 45.0, {}
    late = {46: 0.73, 47: 1.86, 48: 0.88, 52: 1.24}  # Mbit/s: bytes held behind lost packets until they were resent

    def rate(t):  # 10 Mbit/s, then a 128 kbit/s policer (on a 600-ms link: the real run's seconds)
        s = int(t)
        if t < drop_t:
            return 10 * MBIT
        if s in late:
            return late[s] * MBIT
        return policed.setdefault(s, rng.uniform(0.5, 1.5) * 0.128 * MBIT)
    meter, det = run(rate, 110)
    (ev,) = det.events
    truth = statistics.fmean(policed.values()) / MBIT
    assert ev["throttled_mbps"] == pytest.approx(truth, rel=0.10)  # before: 0.185, +44 %


@pytest.mark.parametrize("outage_s", [20, 300])
def test_outage_is_an_outage_event_and_measuring_resumes_after_it(outage_s):
    start = 40

    def rate(t):
        if start <= t < start + outage_s:
            return 0
        ramp = min(1.0, (t - start - outage_s + 0.5) / 3) if t >= start + outage_s else 1.0
        return 50 * MBIT * ramp
    meter, det = run(rate, start + outage_s + 60)
    assert det.events == []
    outages = kinds(det, "outage")
    assert len(outages) == 1
    o = outages[0]
    assert abs(seconds_of(o["start"]) - start) <= 1 and abs(seconds_of(o["end"]) - start - outage_s) <= 1
    assert o["duration_s"] == pytest.approx(outage_s, abs=1)
    assert det.baseline_bps == pytest.approx(50 * MBIT, rel=0.05)


def test_a_throttle_after_an_outage_is_still_found():
    meter, det = run(lambda t: 0 if 40 <= t < 70 else (80 if t < 100 else 8) * MBIT, 140)
    assert len(kinds(det, "outage")) == 1 and len(det.events) == 1
    assert abs(seconds_of(det.events[0]["start"]) - 100) < 1


def congestion(seed, first_mbps=None, first_s=12):
    rng = random.Random(seed)
    edges, t = [], 0.0
    while t < 400:
        edges.append((t, rng.uniform(30, 80)))
        t += rng.uniform(5, 10)

    def rate(t):
        if first_mbps is not None and t < first_s:
            return first_mbps * MBIT
        level = [v for e, v in edges if e <= t][-1]
        return level * MBIT * (1 + 0.05 * math.sin(t * 7.3))
    return rate


@pytest.mark.parametrize("first", [None, 80, 30, 100])
def test_five_minutes_of_random_30_to_80_congestion_is_never_a_throttle(first):
    for seed in range(8):
        meter, det = run(congestion(seed, first), 300)
        assert det.events == [], (seed, det.events)
        found = kinds(det, "congestion")
        assert found, (seed, det.all_events)
        assert found[-1]["spread_percent"] > 35


def lossy(seed, mean_mbps=20, sd=0.35):
    """A lossy link's seconds (satellite, say): each a random multiple of the mean, log-normal."""
    rng, seconds = random.Random(seed), {}

    def rate(t):
        if int(t) not in seconds:
            seconds[int(t)] = max(0.05, rng.lognormvariate(0, sd))
        return mean_mbps * MBIT * seconds[int(t)]
    return rate


def test_a_lossy_link_at_the_edge_of_congested_is_one_event_not_one_a_minute():
    for seed in range(10):  # before CALM_S: 5 to 19 congestion events in these 5 minutes
        meter, det = run(lossy(seed), 300)
        assert det.events == [] and 1 <= len(kinds(det, "congestion")) <= 2, (seed, det.all_events)
        assert_never_overlap(kinds(det, "congestion"))


def satellite_drop(seed, drop_t, swing, low_mbps=1.0):
    """A lossy 10 Mbit/s satellite link (log-normal seconds) that drops to `low_mbps` at drop_t."""
    high, rng, low = lossy(seed, 10, swing), random.Random(seed + 1000), {}

    def rate(t):
        if t < drop_t:
            return high(t)
        if int(t) not in low:
            low[int(t)] = rng.lognormvariate(0, 0.3)
        return low_mbps * MBIT * low[int(t)]
    return rate


@pytest.mark.parametrize("swing", [0.35, 0.5])
def test_a_drop_to_a_tenth_on_a_swinging_satellite_link_is_found_in_the_clean_link_time(swing):
    drop_t = 60.3
    for seed in range(10):  # before: 30 s in about half the runs (the link is never "steady" or is congested)
        rate = satellite_drop(seed, drop_t, swing)
        meter, det = run(rate, 110)
        (ev,) = det.events
        mark = sum(rate(s / 100) / 100 for s in range(int(drop_t * 100)))
        low = statistics.fmean(rate(s + 0.5) for s in range(61, 110)) / MBIT
        assert seconds_of(ev["detected_at"]) - drop_t <= 15, (seed, ev)
        assert abs(ev["at_bytes"] - mark) / mark < 0.02, (seed, ev, mark)
        assert ev["throttled_mbps"] == pytest.approx(low, rel=0.10), (seed, ev)


def test_congestion_that_stops_is_closed_at_its_first_calm_second():
    swinging = congestion(3)
    meter, det = run(lambda t: swinging(t) if t < 150 else 80 * MBIT, 330)
    (event,) = kinds(det, "congestion")
    assert event["end"] is not None and 150 <= seconds_of(event["end"]) <= 280, event


def test_a_drop_that_never_becomes_a_plateau_does_not_freeze_the_baseline_for_the_whole_test():
    def rate(t):  # after a minute at 80: 3 s at 80, 4 s at 20, over and over: below the open level, never flat
        return (80 if t < 60 or int(t) % 7 < 3 else 20) * MBIT
    meter, det = run(rate, 3600)
    assert det.events == []
    assert len(det.baseline._pending) <= baseline.HOLD_MAX_S + 1  # before: 3,546 seconds held back after an hour
    assert det.baseline_bps < 60 * MBIT  # it follows the link (a mean of 46) instead of staying at 80


def test_long_satellite_slow_start_does_not_lower_the_baseline():
    def rate(t):  # cwnd doubles every 600 ms RTT for ~6 s, then creeps up
        return min(20, 0.05 * 2 ** (t / 0.6)) * MBIT
    meter, det = run(rate, 60)
    assert det.baseline_bps == pytest.approx(20 * MBIT, rel=0.05)


def test_one_lossy_streams_swinging_seconds_give_the_baseline_its_mean_not_the_top_of_its_sawtooth():
    rng = random.Random(3)
    seconds = {}

    def rate(t):  # one stream at 600 ms RTT and 1 % loss: most seconds near 17, one in five deep in recovery
        s = int(t)
        if s not in seconds:
            seconds[s] = rng.uniform(13, 22) if rng.random() > 0.2 else rng.uniform(1, 10)
        return seconds[s] * MBIT
    meter, det = run(rate, 150)
    mean = statistics.fmean(seconds[s] for s in range(150 - 72, 150 - 12))  # the window the baseline sees
    assert det.events == []
    assert det.baseline_bps / MBIT == pytest.approx(mean, rel=0.05)


def test_a_fast_first_few_seconds_do_not_set_the_baseline():
    meter, det = run(lambda t: (200 if t < 3 else 60) * MBIT, 60)
    assert det.baseline_bps == pytest.approx(60 * MBIT, rel=0.03)
    assert det.events == []


def test_a_shallow_drop_soon_after_the_baseline_is_judged_against_the_speed_before_it():
    meter, det = run(lambda t: (20 if t < 22 else 10) * MBIT, 80, baseline_seconds=5)
    assert len(det.events) == 1 and det.events[0]["baseline_mbps"] == pytest.approx(20, rel=0.02)


def test_a_long_mixed_session_keeps_every_kind_of_event_apart():
    class Mixed:
        """A 90 -> 40 Mbit/s speed boost (a bucket that refills), two outages, a throttle between them."""

        def __init__(self):
            self.boost, self.t = TokenBucket(90, 40, 60e6), 0.0

        def send(self, dt):
            t, self.t = self.t, self.t + dt
            if 150 <= t < 180 or 400 <= t < 430:
                self.boost.idle(dt)
                return 0  # outages
            n = self.boost.send(dt)
            return min(n, 8 * MBIT * dt) if 230 <= t < 330 else n  # a throttle

        def idle(self, seconds):
            self.t += seconds
            self.boost.idle(seconds)
    meter, det, rests = drive(Mixed(), 440)
    assert len(rests) == 1
    assert [e["kind"] for e in det.all_events] == ["burst", "outage", "throttle", "outage"], det.all_events
    assert det.all_events[0]["came_back"] is True
    assert_never_overlap(det.all_events)
    assert det.events[0]["end"] is not None and abs(seconds_of(det.events[0]["end"]) - 330) < 1.5
