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


def test_collector_sigkilled_mid_transfer_counts_what_the_kernel_counted(server, link):
    isp, base = netns.start_fake_isp(link)
    try:
        before = netns.kernel_counters(link.host_if)
        s = server(interfaces=[link.host_if], test_urls=[base + "/stream"])
        wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
        assert s.post("/api/start", json={"limit_gb": 0.3, "streams": 2}).status_code == 200
        wait_for(lambda: s.stats()["total_bytes"] > 100_000_000, 20, "100 MB through the veth")
        old = s.children()["collector"].pid
        os.kill(old, signal.SIGKILL)  # mid-transfer
        wait_for(lambda: s.children().get("collector") and s.children()["collector"].pid != old, 6, "restarted")
        wait_for(lambda: s.stats()["status"] == "finished", 30, "session finished at 0.3 GB")
        time.sleep(1.5)
        s.stop()  # SIGTERM: the collector flushes its ledger
        after = netns.kernel_counters(link.host_if)
        kernel = (after[0] - before[0]) + (after[1] - before[1])
        ledger = json.loads((s.data_dir / "usage.json").read_text())
        counted = sum(ledger["totals"][link.host_if])
        print(f"kill -9 mid-transfer: kernel {kernel:,} B, ledger {counted:,} B, "
              f"error {100 * (counted - kernel) / kernel:+.4f} %")
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
        assert s.post("/api/start", json={"limit_gb": 0.25, "streams": 2}).status_code == 200
        wait_for(lambda: s.stats()["total_bytes"] > 80_000_000, 20, "80 MB through the veth")
        old = s.children()["collector"].pid
        os.kill(old, signal.SIGKILL)
        (s.data_dir / "usage.json").write_text('{"version": 1, "days": {"2026-')  # torn by a crash
        wait_for(lambda: s.children().get("collector") and s.children()["collector"].pid != old, 6, "restarted")
        wait_for(lambda: s.stats()["status"] == "finished", 30, "session finished")
        time.sleep(1.5)
        s.stop()
        after = netns.kernel_counters(link.host_if)
        kernel = (after[0] - before[0]) + (after[1] - before[1])
        ledger = json.loads((s.data_dir / "usage.json").read_text())
        counted = sum(ledger["totals"][link.host_if])
        print(f"torn ledger restored from backup: kernel {kernel:,} B, ledger {counted:,} B, "
              f"error {100 * (counted - kernel) / kernel:+.4f} %")
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
    code = "import interfaces; print(','.join(interfaces.counted_interfaces('auto', interfaces.read_counters())))"
    r = netns.sh("ip", "netns", "exec", link.ns, sys.executable, "-c", code)
    assert r.stdout.strip() == ns_if
