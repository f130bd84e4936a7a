"""The refill check on a fake clock: an early drop is rested on, and a speed boost comes back where a volume
throttle does not. The session's part (rest = streams paused, the test's clock stopped) is played by drive(); the
last test runs the real downloader."""
import time

import pytest

from datacap.measure import refill
from linkcheck import Session
from linkcheck import kinds as kinds_in
from test_links_shapes import kinds, seconds_of
from test_throttle import MBIT, TokenBucket, VolumeThrottle, drive


def test_a_volume_throttle_at_the_start_of_a_test_is_a_throttle_at_its_mark_not_a_burst():
    _, mon, rests = drive(VolumeThrottle(100, 30, 150e6), 120)
    assert len(rests) == 1 and rests[0][1] == round(150e6 / (30 * MBIT))  # a 30-Mbit/s bucket of 150 MB fills in 40 s
    assert kinds(mon, "burst") == []  # before: "~150 MB at 100 Mbit/s, then 30 Mbit/s sustained", no throttle
    (ev,) = mon.events
    assert ev["at_bytes"] == pytest.approx(150e6, rel=0.02) and ev["from_start"] is True
    assert ev["baseline_mbps"] == pytest.approx(100, rel=0.05) and ev["throttled_mbps"] == pytest.approx(30, rel=0.05)
    assert ev["end"] is None and mon.baseline_bps == pytest.approx(100 * MBIT, rel=0.05)
    assert ev["text"] == ("throttled from the start of this test at 0.15 GB: 100 → 30 Mbit/s; the fast rate did not "
                          "come back after 40 s of rest")
    assert seconds_of(ev["detected_at"]) > rests[0][0] + rests[0][1]  # decided after the rest


def test_a_speed_boost_whose_bucket_fills_during_the_rest_is_a_burst_and_the_sustained_rate_the_baseline():
    _, mon, rests = drive(TokenBucket(90, 38, 100e6), 150)
    assert len(rests) == 1 and refill.REST_MIN_S <= rests[0][1] <= refill.REST_MAX_S
    assert mon.events == []
    (burst,) = kinds(mon, "burst")
    assert burst["came_back"] is True and burst["rest_s"] == rests[0][1]
    assert burst["burst_mbps"] == pytest.approx(90, rel=0.05) and burst["sustained_mbps"] == pytest.approx(38, rel=0.05)
    assert burst["text"].startswith(f"speed boost: ~{burst['bytes'] / 1e6:.0f} MB at 90 Mbit/s, fast again after "
                                    f"{rests[0][1]} s of rest")
    assert mon.baseline_bps == pytest.approx(38 * MBIT, rel=0.03)  # the refilled bucket's seconds are not the link's


def test_a_boost_whose_fast_rate_stays_after_the_rest_makes_the_fast_rate_the_baseline():
    class DipThenFast(VolumeThrottle):
        def idle(self, seconds):
            self.slow = self.fast  # the slow stretch was something else: after the rest the line is fast for good
    _, mon, rests = drive(DipThenFast(80, 30, 100e6), 200)
    (burst,) = kinds(mon, "burst")
    assert burst["came_back"] is True and mon.events == []
    assert mon.baseline_bps == pytest.approx(80 * MBIT, rel=0.03)


def test_the_check_rests_once_per_test():
    _, mon, rests = drive(TokenBucket(90, 38, 100e6), 400)
    assert len(rests) == 1


def test_the_real_downloader_rests_the_line_and_tells_a_volume_throttle_from_the_start(fake_isp, tmp_path):
    """The real process against a fake ISP that throttles 40 -> 12 Mbit/s after 40 MB for good."""
    isp = fake_isp(rate_mbps=40, throttle_after_bytes=40_000_000, throttled_mbps=12)
    s = Session(tmp_path, [isp.url()], baseline_seconds=5)
    try:
        d = s.wait_for(lambda d: d["resting"], 60, "the rest")
        sent = isp.link.sent
        time.sleep(min(5, d["resting"]["left_s"] - 1))
        assert isp.link.sent - sent < 300_000  # the line rests: nothing but what was in flight
        d = s.wait_for(lambda d: d["throttle_events"], 90, "the verdict after the rest")
        (ev,) = d["throttle_events"]
        assert ev["from_start"] and ev["at_bytes"] == pytest.approx(40e6, rel=0.05) and not kinds_in(d, "burst")
        assert ev["text"].startswith("throttled from the start of this test at 0.04 GB: 40 → 12 Mbit/s")
    finally:
        s.stop()
