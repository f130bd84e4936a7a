"""The real downloader on real links with users' faults: an outage, a 128 kbit/s policer, a throttle at the
threshold's edge (root: network namespaces, tc, TUN). Longer classes are in bench/links.py."""
import os
import time

import pytest

from conftest import have_root_networking, need
import delayline
import netns
from linkcheck import Session, epoch, kinds, overlapping


@pytest.fixture(autouse=True)
def root_networking():
    need(have_root_networking(), "needs root and iproute2 for network namespaces")
    need(os.path.exists("/dev/net/tun"), "needs /dev/net/tun for the userspace delay line")


@pytest.fixture
def session(tmp_path):
    made = []

    def make(urls, **kw):
        s = Session(tmp_path, urls, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def test_an_outage_of_20_s_is_an_outage_event_and_measuring_resumes_by_itself(session):
    with delayline.tun_link(delay_ms=10) as (link, line):
        delayline.shape(link, "20mbit")
        isp, base = netns.start_fake_isp(link)
        try:
            s = session([base + "/stream"], baseline_seconds=5)
            s.wait_for(lambda d: d["baseline_speed"], 20, "a baseline")
            line.down = True
            time.sleep(20)
            line.down = False
            up = time.monotonic()
            d = s.wait_for(lambda d: kinds(d, "outage") and kinds(d, "outage")[0]["end"] and d["speed_mbps"] > 1,
                           15, "the outage closed and bytes flowing again")
            back_s = time.monotonic() - up
            print(f"outage 20 s: measuring again {back_s:.1f} s after the link returned; {kinds(d, 'outage')[0]}")
            assert back_s <= 10
            (outage,) = kinds(d, "outage")
            assert 15 <= outage["duration_s"] <= 32  # from the last bytes to the first ones back
            time.sleep(5)
            d = s.read()
            assert d["status"] == "running" and d["throttle_events"] == [] and not d["outage"]
        finally:
            isp.terminate()


def test_a_128_kbit_policer_on_4_streams_is_found_within_30_s(session):
    with delayline.veth_link() as link, delayline.policer_ready(link) as ifb:
        delayline.shape(link, "4mbit")
        isp, base = netns.start_fake_isp(link)
        try:
            s = session([base + "/stream"], baseline_seconds=5)
            s.wait_for(lambda d: d["baseline_speed"] and d["session_duration"] >= 15, 30, "a baseline")
            delayline.police(ifb, 128_000)
            switched = time.time()
            d = s.wait_for(lambda d: d["throttle_events"], 40, "a throttle event")
            found_s = time.time() - switched
            ev = d["throttle_events"][0]
            print(f"128 kbit/s policer: event in the file {found_s:.1f} s after the switch: {ev}")
            assert found_s <= 30
            assert abs(epoch(ev["start"]) - switched) <= 2
            time.sleep(15)
            d = s.read()
            ev = d["throttle_events"][0]
            after = [p for p in d["data_points"] if epoch(p["time"]) >= switched + 2]
            truth = (after[-1]["bytes"] - after[0]["bytes"]) * 8 / (len(after) - 1) / 1e6
            assert ev["throttled_mbps"] == pytest.approx(truth, rel=0.10), (ev, truth)
            assert len(d["throttle_events"]) == 1 and kinds(d, "outage") == []
        finally:
            isp.terminate()


def test_a_throttle_at_the_thresholds_edge_on_a_shaped_link_is_exactly_one_event(session):
    with delayline.veth_link(rate="20mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = session([base + "/stream"], baseline_seconds=5)
            s.wait_for(lambda d: d["session_duration"] >= 22, 30, "past the initial-burst window")
            d = s.fresh()
            delayline.shape(link, "10mbit")  # exactly the default 50 %
            switched, mark = time.time(), d["total_bytes"] + d["speed_mbps"] * 1e6 / 8 * (time.time() - epoch(d["updated_at"]))
            d = s.wait_for(lambda d: d["throttle_events"], 40, "a throttle event")
            found_s = time.time() - switched
            time.sleep(10)
            d = s.read()
            (ev,) = d["throttle_events"]
            print(f"20 -> 10 Mbit/s: event {found_s:.1f} s after the switch, at_bytes {ev['at_bytes']:,} vs {mark:,.0f} "
                  f"({100 * (ev['at_bytes'] - mark) / mark:+.2f} %), throttled {ev['throttled_mbps']}")
            assert found_s <= 17 and ev["end"] is None  # one level: 15 s, plus reading the file under load
            assert abs(ev["at_bytes"] - mark) / mark < 0.02
            assert ev["throttled_mbps"] == pytest.approx(9.55, rel=0.10)  # tbf 10mbit: 9.55 Mbit/s of payload
            assert overlapping(d["events"]) == []
        finally:
            isp.terminate()
