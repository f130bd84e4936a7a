"""A test over a chosen line (issue: lines): two lines on this machine, each a 1 Gbit/s veth; the same address
answers through both, so only the streams' binding to the line's interface decides which one carries the test."""
import contextlib
import time

import pytest

import netns
from conftest import have_root_networking, need
from harness import wait_for

ENDED = ("stopped", "finished", "error")
LINE_BPS = 1e9 / 8


@contextlib.contextmanager
def two_lines():
    """(link A, link B, URL): fake ISPs on port 8090 in both namespaces, at one address the host routes by A
    (metric 10) and B (metric 20); A is the default, B only for sockets bound to it."""
    need(have_root_networking(), "needs root and iproute2 for two veth links")
    with netns.veth_link(rate="1gbit") as a, netns.veth_link(rate="1gbit") as b:
        anycast = a.host_ip.rsplit(".", 1)[0] + ".5"  # in A's claimed /24, outside both /30s
        isps = []
        try:
            for link, metric in ((a, 10), (b, 20)):
                netns.sh("ip", "netns", "exec", link.ns, "ip", "addr", "add", f"{anycast}/32", "dev", "lo")
                netns.sh("ip", "route", "add", f"{anycast}/32", "dev", link.host_if, "metric", str(metric))
                isps.append(netns.start_fake_isp(netns.Link(link.ns, link.host_if, link.host_ip, "0.0.0.0"),
                                                 port=8090)[0])
            yield a, b, f"http://{anycast}:8090/stream"
        finally:
            for p in isps:
                p.terminate()
            for link in (a, b):
                netns.sh("ip", "route", "del", f"{anycast}/32", "dev", link.host_if, check=False)


def moved(link, before):
    rx, tx = netns.kernel_counters(link.host_if)
    return rx + tx - before


@pytest.fixture
def lines_server(server):
    with two_lines() as (a, b, url):
        lines = [{"name": "A", "source": {"type": "local", "interfaces": [a.host_if]}, "data_cap_gb": 1000},
                 {"name": "B", "source": {"type": "local", "interfaces": [b.host_if]}, "data_cap_gb": 0.6}]
        s = server(lines=lines, sources="auto", interfaces="auto", test_urls=[url], stop_at_cap=True,
                   update_interval_seconds=1, alert_thresholds_percent=[])
        wait_for(lambda: s.get("/healthz").status_code == 200, 10, "collector counting")
        yield s, a, b


def test_a_test_over_line_b_stops_at_bs_cap_within_2_s_of_line_rate_and_crosses_only_b(lines_server):
    s, a, b = lines_server
    before = {link.host_if: sum(netns.kernel_counters(link.host_if)) for link in (a, b)}
    used0 = s.get("/api/usage").json()["lines"][1]["cycle"]["used_bytes"]
    assert s.post("/api/start", json={"line": "B"}).status_code == 200
    st = wait_for(lambda: (lambda x: x if x["status"] in ENDED else None)(s.stats()), 40, "the test to end at B's cap")
    assert st["status"] == "finished" and "cap" in st["reason"], st["reason"]
    wait_for(lambda: s.stats()["status"] == "finished" and "downloader" not in s.children(), 10, "the downloader gone")
    rate = st["total_bytes"] / st["session_duration"]
    time.sleep(2)  # the collector counts the last bytes in flight
    used = s.get("/api/usage").json()["lines"][1]["cycle"]["used_bytes"]
    over = used - 600_000_000
    print(f"line B: from {used0 / 1e6:.1f} MB, {st['total_bytes'] / 1e6:.0f} MB at {rate * 8 / 1e6:.0f} Mbit/s; "
          f"cycle {used / 1e9:.4f} GB, {over / 1e6:+.1f} MB past B's cap ({over / LINE_BPS:+.2f} s of line rate); "
          f"A moved {moved(a, before[a.host_if]) / 1e6:.1f} MB")
    assert rate * 8 >= 500e6 and over <= 2 * LINE_BPS
    assert moved(a, before[a.host_if]) < 5_000_000  # the default route's line carried none of it
    assert s.get("/api/history").json()["tests"][0]["verdict"].startswith("B: ")


def test_the_same_test_over_line_a_far_from_its_cap_is_not_stopped(lines_server):
    s, a, b = lines_server
    before = sum(netns.kernel_counters(b.host_if))
    assert s.post("/api/start", json={"line": "A", "limit_gb": 0.9}).status_code == 200
    st = wait_for(lambda: (lambda x: x if x["status"] in ENDED else None)(s.stats()), 40, "the test to end")
    assert st["status"] == "finished" and "session limit" in st["reason"] and st["total_bytes"] >= 900_000_000
    assert moved(b, before) < 5_000_000
