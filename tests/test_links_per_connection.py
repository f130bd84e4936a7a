"""Per-connection limits: streams that each meet their own limit vs streams that share one line."""
import random

import pytest

from conftest import have_root_networking, need
import delayline
import netns
from datacap.measure.per_stream import WINDOW_S, PerStreamMeter
from linkcheck import Session

MBIT = 1e6 / 8


def feed(rows):
    m, counts, t = PerStreamMeter(len(rows[0])), [0] * len(rows[0]), 0.0
    m.sample(t, counts)
    for row in rows:
        t += 1.0
        counts = [c + r for c, r in zip(counts, row)]
        m.sample(t, counts)
    return m


def test_streams_flat_at_the_same_rate_on_their_own_are_limited_per_connection():
    rng = random.Random(1)
    m = feed([[10 * MBIT * (1 + rng.uniform(-0.01, 0.01)) for _ in range(4)] for _ in range(WINDOW_S + 2)])
    assert m.per_connection_mbps() == pytest.approx(10, rel=0.02)
    assert m.speeds_mbps() == pytest.approx([10] * 4, rel=0.02)


def test_streams_trading_one_line_between_them_are_not():
    rng = random.Random(2)
    rows = []
    for _ in range(WINDOW_S + 2):
        shares = [1 + rng.uniform(-0.05, 0.05) for _ in range(4)]
        rows.append([40 * MBIT * s / sum(shares) for s in shares])  # the sum is the line's, steady
    assert feed(rows).per_connection_mbps() is None


def test_streams_at_different_rates_are_not():
    m = feed([[10 * MBIT, 10 * MBIT, 5 * MBIT, 10 * MBIT]] * (WINDOW_S + 2))
    assert m.per_connection_mbps() is None


@pytest.mark.parametrize("per_flow", [True, False])
def test_a_per_connection_limit_on_a_real_line_is_named_and_a_shared_line_is_not(tmp_path, per_flow):
    need(have_root_networking(), "needs root and iproute2 for network namespaces")
    with delayline.veth_link() as link:
        isps = [netns.start_fake_isp(link) for _ in range(4)]
        try:
            if per_flow:  # 10 Mbit/s per connection on a 200 Mbit/s line
                delayline.per_flow(link, "200mbit", "10mbit", [int(b.rsplit(":", 1)[1]) for _, b in isps])
            else:
                delayline.shape(link, "40mbit")
            s = Session(tmp_path, [b + "/stream" for _, b in isps], streams=4)
            try:
                d = s.wait_for(lambda d: d["session_duration"] >= WINDOW_S + 6, WINDOW_S + 30, "the window")
                print(f"per flow {per_flow}: streams {d['stream_speeds_mbps']}, per connection {d['per_connection_mbps']}")
                if per_flow:
                    assert d["per_connection_mbps"] == pytest.approx(9.55, rel=0.05)
                else:
                    assert d["per_connection_mbps"] is None
            finally:
                s.stop()
        finally:
            for p, _ in isps:
                p.terminate()
