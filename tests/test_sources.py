"""Counting the household at the router: real snmpd and miniupnpd in a router namespace (root)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import household
import netns
from conftest import ROOT, have_root_networking, need
from harness import wait_for


@pytest.fixture
def house(tmp_path, request):
    """The household; a test marked `wan_rate("2gbit")` gets an ISP link shaped to that rate."""
    need(have_root_networking(), "needs root and iproute2 for the router, internet and LAN namespaces")
    for tool in ("snmpd", "snmpget", "miniupnpd"):
        need(subprocess.run(["which", tool], capture_output=True).returncode == 0, f"needs Debian's {tool}")
    rate = request.node.get_closest_marker("wan_rate")
    with household.household(tmp_path / "house", wan_rate=rate.args[0] if rate else None) as h:
        (tmp_path / "house").mkdir(exist_ok=True)
        yield h


def snmp_sources(h, **extra):
    return [{"type": "snmp", "host": h.lan_ip, "community": "public", "interface": "wan", "interval_seconds": 1,
             **extra}, {"type": "local", "counts": False}]


def router_total(s, name):
    return sum(s.get("/api/usage").json()["interfaces"].get(name, {"rx_bytes": 0, "tx_bytes": 0}).values())


def within(s, name, kernel, tolerance):
    """The router's ledger total once it is within `tolerance` of the kernel's count (fails with both)."""
    seen = []

    def close():
        seen.append(router_total(s, name))
        return abs(seen[-1] - kernel) / kernel < tolerance and seen[-1]
    try:
        return wait_for(close, 15, f"the ledger within {100 * tolerance:g} % of the router's WAN counters")
    except AssertionError:
        raise AssertionError(f"ledger {seen[-1]:,} B vs router WAN kernel {kernel:,} B") from None


def snmp_server(server, h, base, **config):
    """The real server counting the router over SNMP, once the source answers: (server, source name)."""
    s = server(interfaces=[h.host_if], test_urls=[base + "/stream"], sources=snmp_sources(h), **config)
    name = f"snmp:{h.lan_ip}/wan"
    answering(s, name)
    return s, name


def answering(s, name):
    wait_for(lambda: any(x["name"] == name and x["status"] == "ok" for x in s.get("/api/sources").json()["sources"]),
             10, f"{name} answering")


def download(s, limit_gb, streams=2):
    assert s.post("/api/start", json={"limit_gb": limit_gb, "streams": streams}).status_code == 200


def test_snmp_counts_the_routers_wan_within_0_1_percent_through_a_collector_kill_and_an_snmpd_restart(house, server):
    h = house
    snmpd = h.snmpd()
    isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip))
    try:
        before = h.wan_counters()
        s, name = snmp_server(server, h, base)
        download(s, 1.2)
        wait_for(lambda: s.stats()["total_bytes"] > 300_000_000, 30, "300 MB through the router")
        os.kill(s.children()["collector"].pid, signal.SIGKILL)
        wait_for(lambda: s.stats()["total_bytes"] > 600_000_000, 30, "600 MB through the router")
        household.stop(snmpd)
        time.sleep(2)
        snmpd = h.snmpd()
        wait_for(lambda: s.stats()["status"] == "finished", 60, "1.2 GB through the router")
        after = h.wan_counters()
        kernel = (after[0] - before[0]) + (after[1] - before[1])

        counted = within(s, name, kernel, 0.001)
        print(f"router WAN kernel {kernel:,} B, ledger {counted:,} B ({100 * (counted - kernel) / kernel:+.4f} %)")
        assert kernel >= 1_000_000_000
        usage = s.get("/api/usage").json()
        assert usage["counted"] == [name] and abs(usage["cycle"]["used_bytes"] - counted) <= counted * 0.001
    finally:
        isp.terminate()
        household.stop(snmpd)


def test_lan_only_traffic_is_not_counted_at_the_router(house, server):
    h = house
    snmpd = h.snmpd()
    neighbour, base = netns.start_fake_isp(h.ns_link(h.lan2, h.lan2_ip))
    try:
        s, name = snmp_server(server, h, base)
        download(s, 0.2)
        wait_for(lambda: s.stats()["status"] == "finished", 60, "200 MB from the LAN neighbour")
        time.sleep(3)
        assert router_total(s, name) < 1_000_000  # only the router's own chatter, if any
        assert sum(s.get("/api/usage").json()["interfaces"][h.host_if].values()) > 200_000_000  # shown, not counted
        assert s.get("/api/usage").json()["cycle"]["used_bytes"] < 1_000_000
    finally:
        neighbour.terminate()
        household.stop(snmpd)


# 32-bit counters belong to routers of up to a gigabit or two; unshaped, these veths move 4.5 GB in
# 2 s, faster than snmpd refreshes its ifTable cache, and no poller can see a wrap in that.
@pytest.mark.wan_rate("2gbit")
def test_32_bit_router_counters_wrapping_at_4_gib_are_counted_right(house, server):
    h = house
    snmpd = h.snmpd(hide_64bit=True)
    isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip))
    try:
        before = h.wan_counters()
        s, name = snmp_server(server, h, base)
        download(s, 4.5, streams=4)
        wait_for(lambda: s.stats()["status"] == "finished", 120, "4.5 GB through the router")
        after = h.wan_counters()
        kernel = (after[0] - before[0]) + (after[1] - before[1])
        counted = within(s, name, kernel, 0.001)
        events = [e["reason"] for e in s.get("/api/usage").json()["counter_events"] if e["interface"] == name]
        print(f"32-bit router counters: kernel {kernel:,} B, ledger {counted:,} B, events {events}")
        assert "wrap32" in events and kernel > 2 ** 32
    finally:
        isp.terminate()
        household.stop(snmpd)


def test_a_counter_stuck_at_its_maximum_is_flagged_not_counted(house, server):
    h = house
    snmpd = h.snmpd(hide_64bit=True, stuck_value=True)
    try:
        s = server(interfaces=[h.host_if], sources=snmp_sources(h))
        name = f"snmp:{h.lan_ip}/wan"
        wait_for(lambda: "stuck" in [e["reason"] for e in s.get("/api/usage").json()["counter_events"]
                                     if e["interface"] == name], 15, "the stuck counter flagged")
        time.sleep(2)
        assert router_total(s, name) == 0
    finally:
        household.stop(snmpd)


def test_a_router_that_stops_answering_is_shown_and_its_gap_filled_when_it_returns(house, server):
    h = house
    snmpd = h.snmpd()
    isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip))
    try:
        s, name = snmp_server(server, h, base)
        before = h.wan_counters()
        time.sleep(1.5)
        household.stop(snmpd)
        wait_for(lambda: [x for x in s.get("/api/sources").json()["sources"] if x["name"] == name][0]["status"]
                 == "failing", 10, "the source shown failing")
        counted0 = router_total(s, name)
        download(s, 0.3)
        wait_for(lambda: s.stats()["status"] == "finished", 60, "300 MB while the router does not answer")
        assert router_total(s, name) == counted0  # paused, not guessed
        snmpd = h.snmpd()
        after = h.wan_counters()
        gap = (after[0] - before[0]) + (after[1] - before[1])
        wait_for(lambda: abs(router_total(s, name) - counted0 - gap) / gap < 0.01, 20, "the gap filled")
    finally:
        isp.terminate()
        household.stop(snmpd)


def test_upnp_counts_the_gateway_that_miniupnpd_serves(house, server):
    h = house
    upnp, url = h.miniupnpd()
    isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip))
    try:
        before = h.wan_counters()
        s = server(interfaces=[h.host_if], test_urls=[base + "/stream"],
                   sources=[{"type": "upnp", "url": url, "interval_seconds": 1}, {"type": "local", "counts": False}])
        name = f"upnp:{h.lan_ip}"
        answering(s, name)
        download(s, 0.3)
        wait_for(lambda: s.stats()["status"] == "finished", 60, "300 MB through the router")
        after = h.wan_counters()
        kernel = (after[0] - before[0]) + (after[1] - before[1])
        counted = within(s, name, kernel, 0.01)
        print(f"UPnP (miniupnpd): kernel {kernel:,} B, ledger {counted:,} B ({100 * (counted - kernel) / kernel:+.3f} %)")
        assert s.get("/api/usage").json()["counted"] == [name]
    finally:
        isp.terminate()
        household.stop(upnp)


def test_auto_finds_the_gateway_by_ssdp_and_counts_it_once_its_counters_grow(house, tmp_path):
    """A collector on the second LAN machine (SSDP stays inside the test's namespaces) with "sources": "auto"."""
    h = house
    upnp, _ = h.miniupnpd()
    isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip), rate_mbps=200)
    data = tmp_path / "lan2-data"
    data.mkdir()
    config = tmp_path / "lan2.json"
    config.write_text(json.dumps({"sources": "auto", "interfaces": ["l2"], "probe_interval_minutes": None}))
    collector = subprocess.Popen(["ip", "netns", "exec", h.lan2, sys.executable, str(ROOT / "collector.py"),
                                  "--config", str(config), "--data-dir", str(data), "--interval", "0.5"],
                                 stderr=subprocess.PIPE, text=True)
    traffic = subprocess.Popen(["ip", "netns", "exec", h.lan2, "curl", "-s", "-o", "/dev/null",
                                base + "/stream?bytes=2000000000"])
    try:
        from datacap.store import runtime_dir
        live = runtime_dir(data) / "collector.json"
        doc = wait_for(lambda: (lambda d: d if d["pid"] == collector.pid and d["counted"]  # this run's file
                                  and d["counted"][0].startswith("upnp:") else None)(
            json.loads(live.read_text())), 40, "the gateway found by SSDP and counting")
        upnp_src = [x for x in doc["sources"] if x["type"] == "upnp"][0]
        local = [x for x in doc["sources"] if x["type"] == "local"][0]
        assert upnp_src["counted"] and upnp_src["status"] == "ok" and not local["counted"]
        assert upnp_src["label"] == f"Router {h.lan2_ip.rsplit('.', 1)[0]}.9 (UPnP)"
    finally:
        traffic.kill()
        collector.terminate()
        collector.wait(10)
        isp.terminate()
        household.stop(upnp)
