"""Usage accounting through a real interface with real kernel counters (root: netns + veth)."""
import json
import os
import sys
import signal
import time

import pytest

from conftest import have_root_networking, need
from harness import wait_for
import netns


@pytest.fixture
def link():
    need(have_root_networking(), "needs root and iproute2 to create a network namespace and a veth pair")
    with netns.veth_link(rate="400mbit") as l:
        yield l


def kill_collector_mid_transfer(s, limit_gb, after_bytes, tear_ledger=False):
    """Start a session, SIGKILL the collector once `after_bytes` went through, let the server restart it."""
    assert s.post("/api/start", json={"limit_gb": limit_gb, "streams": 2}).status_code == 200
    wait_for(lambda: s.stats()["total_bytes"] > after_bytes, 20, f"{after_bytes:,} B through the veth")
    old = s.children()["collector"].pid
    os.kill(old, signal.SIGKILL)
    if tear_ledger:
        (s.data_dir / "usage.json").write_text('{"version": 1, "days": {"2026-')  # torn by a crash
    wait_for(lambda: s.children().get("collector") and s.children()["collector"].pid != old, 6, "restarted")
    wait_for(lambda: s.stats()["status"] == "finished", 30, "session finished")
    time.sleep(1.5)
    s.stop()  # SIGTERM: the collector flushes its ledger


def ledger_vs_kernel(s, link, before, label):
    """(ledger, kernel delta, ledger contents) for the host-side veth; prints the figure."""
    after = netns.kernel_counters(link.host_if)
    kernel = (after[0] - before[0]) + (after[1] - before[1])
    ledger = json.loads((s.data_dir / "usage.json").read_text())
    counted = sum(ledger["totals"][link.host_if])
    print(f"{label}: kernel {kernel:,} B, ledger {counted:,} B, error {100 * (counted - kernel) / kernel:+.4f} %")
    return counted, kernel, ledger


def test_collector_sigkilled_mid_transfer_counts_what_the_kernel_counted(server, link):
    isp, base = netns.start_fake_isp(link)
    try:
        before = netns.kernel_counters(link.host_if)
        s = server(interfaces=[link.host_if], test_urls=[base + "/stream"])
        wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
        kill_collector_mid_transfer(s, 0.3, 100_000_000)
        counted, kernel, ledger = ledger_vs_kernel(s, link, before, "kill -9 mid-transfer")
        assert kernel >= 300_000_000
        assert abs(counted - kernel) / kernel < 0.005, (counted, kernel)
        assert "gap" in [e["reason"] for e in ledger["counter_events"]]
    finally:
        isp.terminate()


def test_torn_ledger_is_set_aside_and_restored_from_backup_with_nothing_lost(server, link):
    isp, base = netns.start_fake_isp(link)
    try:
        before = netns.kernel_counters(link.host_if)
        s = server(interfaces=[link.host_if], test_urls=[base + "/stream"])
        wait_for(lambda: (s.data_dir / "usage.json.bak").exists(), 5, "the first ledger backup")
        kill_collector_mid_transfer(s, 0.25, 80_000_000, tear_ledger=True)
        counted, kernel, _ = ledger_vs_kernel(s, link, before, "torn ledger restored from backup")
        assert list(s.data_dir.glob("usage.json.corrupt-*"))
        assert "restored usage.json.bak" in s.log()
        assert abs(counted - kernel) / kernel < 0.005, (counted, kernel)
    finally:
        isp.terminate()


def test_auto_counts_the_default_route_interface_and_not_a_tunnel(link):
    ns_if = link.host_if.replace("dch", "dcn")
    netns.sh("ip", "netns", "exec", link.ns, "ip", "route", "add", "default", "via", link.host_ip)
    netns.sh("ip", "netns", "exec", link.ns, "ip", "link", "add", "wg0", "type", "veth", "peer", "name", "wg0p")
    netns.sh("ip", "netns", "exec", link.ns, "ip", "link", "set", "wg0", "up")
    netns.sh("ip", "netns", "exec", link.ns, "ip", "route", "add", "default", "dev", "wg0", "metric", "50")
    code = "from datacap.usage import interfaces; print(','.join(interfaces.counted_interfaces('auto', interfaces.read_counters())))"
    r = netns.sh("ip", "netns", "exec", link.ns, sys.executable, "-c", code)
    assert r.stdout.strip() == ns_if


def test_usage_api_matches_the_kernel_within_5_s_of_a_transfer_with_the_collector_killed(server, link):
    isp, base = netns.start_fake_isp(link)
    try:
        before = netns.kernel_counters(link.host_if)
        s = server(interfaces=[link.host_if], test_urls=[base + "/stream"], update_interval_seconds=1)
        wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
        assert s.post("/api/start", json={"limit_gb": 0.3, "streams": 2}).status_code == 200
        wait_for(lambda: s.stats()["total_bytes"] > 100_000_000, 20, "100 MB through the veth")
        old = s.children()["collector"].pid
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: s.stats()["status"] == "finished", 30, "session finished")
        done = time.monotonic()
        after = netns.kernel_counters(link.host_if)
        kernel = (after[0] - before[0]) + (after[1] - before[1])

        def close_enough():
            used = s.get("/api/usage").json()["cycle"]["used_bytes"]
            return abs(used - kernel) / kernel < 0.005 and used
        used = wait_for(close_enough, 5, "/api/usage within 0.5 % of the kernel's counters")
        print(f"/api/usage {used:,} B vs kernel {kernel:,} B ({100 * (used - kernel) / kernel:+.3f} %) "
              f"{time.monotonic() - done:.1f} s after the transfer, collector SIGKILLed mid-transfer")
        assert kernel >= 300_000_000
    finally:
        isp.terminate()


def test_bytes_inside_a_free_window_leave_the_cap_figure_unchanged_and_outside_they_count(server, link):
    from datetime import datetime, timedelta
    now = datetime.now().astimezone()
    inside = {"start": f"{now - timedelta(hours=1):%H:%M}", "end": f"{now + timedelta(hours=1):%H:%M}"}
    outside = {"start": f"{now + timedelta(hours=2):%H:%M}", "end": f"{now + timedelta(hours=3):%H:%M}"}
    isp, base = netns.start_fake_isp(link)
    try:
        s = server(interfaces=[link.host_if], test_urls=[base + "/stream"], update_interval_seconds=1,
                   plan={"kind": "monthly", "free_windows": [inside]}, probe_interval_minutes=None)
        wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
        used0 = s.get("/api/usage").json()["cycle"]["used_bytes"]
        assert s.post("/api/start", json={"limit_gb": 0.2}).status_code == 200
        wait_for(lambda: s.stats()["status"] == "finished", 30, "200 MB inside the free window")
        time.sleep(2)
        cycle = s.get("/api/usage").json()["cycle"]
        print(f"inside the window: used {used0:,} -> {cycle['used_bytes']:,} B, free {cycle['free_bytes']:,} B")
        assert cycle["free_bytes"] >= 200_000_000
        assert abs(cycle["used_bytes"] - used0) <= 0.001 * cycle["free_bytes"]
        import requests
        assert requests.put(s.url + "/api/config", json={"plan": {"kind": "monthly", "free_windows": [outside]}},
                            timeout=5).status_code == 200
        time.sleep(2)  # the collector reloads on SIGHUP
        used1, free1 = cycle["used_bytes"], cycle["free_bytes"]
        assert s.post("/api/start", json={"limit_gb": 0.2}).status_code == 200
        wait_for(lambda: s.stats()["status"] == "finished", 30, "200 MB outside the free window")
        time.sleep(2)
        cycle = s.get("/api/usage").json()["cycle"]
        print(f"outside the window: used {used1:,} -> {cycle['used_bytes']:,} B, free {cycle['free_bytes']:,} B")
        assert cycle["used_bytes"] - used1 >= 200_000_000 and cycle["free_bytes"] == free1
    finally:
        isp.terminate()
