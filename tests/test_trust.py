"""The money paths with the real server and children (issue: numbers that survive everything)."""
import os
import signal
import time

import pytest

from conftest import have_root_networking, need
from harness import wait_for
import netns
from test_browser import chromium  # noqa: F401  (the real-browser fixture)

ENDED = ("stopped", "finished", "error")


@pytest.mark.parametrize("collector", ["counting", "sigstopped"])
def test_stop_at_cap_at_line_rate_overruns_by_at_most_2_s_of_line_rate(server, collector):
    """3 GB to go at 1 Gbit/s is 24 s: with the collector SIGSTOPped before the test, longer than the guard
    remembers every tick, shorter than the supervisor's 30 s before it kills a collector that stopped beating."""
    need(have_root_networking(), "needs root and iproute2 to create a network namespace and a veth pair")
    line_bps = 1e9 / 8
    cap = 3_000_000_000 if collector == "sigstopped" else 500_000_000
    with netns.veth_link(rate="1gbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = server(interfaces=[link.host_if], test_urls=[base + "/stream"], update_interval_seconds=1,
                       data_cap_gb=cap / 1e9, stop_at_cap=True, alert_thresholds_percent=[])
            wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
            used0 = s.get("/api/usage").json()["cycle"]["used_bytes"]
            pid = s.children()["collector"].pid
            if collector == "sigstopped":
                os.kill(pid, signal.SIGSTOP)
            try:
                assert s.post("/api/start").status_code == 200
                st = wait_for(lambda: (lambda x: x if x["status"] in ENDED else None)(s.stats()), 60,
                              "the test to end at the cap")
            finally:
                os.kill(pid, signal.SIGCONT)
            assert st["status"] == "finished" and "cap" in st["reason"]
            assert st["cap_stop"]["live"] == (collector == "counting")
            rate = st["total_bytes"] / st["session_duration"]
            time.sleep(3)  # the collector's next samples count the last bytes in flight
            used = s.get("/api/usage").json()["cycle"]["used_bytes"]
            over = used - cap
            print(f"stop_at_cap, collector {collector}: {st['total_bytes'] / 1e6:.0f} MB at {rate * 8 / 1e6:.0f} "
                  f"Mbit/s from {used0 / 1e6:.1f} MB; cycle {used / 1e9:.4f} GB, {over / 1e6:+.1f} MB past the cap "
                  f"({over / line_bps:+.2f} s of line rate); stopped on: {st['cap_stop']['words']}")
            assert rate * 8 >= 500e6  # the 1 Gbit/s line; goodput sags when parallel tests load the CPU
            assert over <= 2 * line_bps
        finally:
            isp.terminate()


def test_a_finished_test_can_be_reset_at_once_while_its_downloader_exits(server, fake_isp):
    isp = fake_isp(rate_mbps=400)
    s = server(test_urls=[isp.url()])
    assert s.post("/api/start", json={"limit_gb": 0.02}).status_code == 200
    wait_for(lambda: s.stats()["status"] == "finished", 20, "the test to finish", interval=0.01)
    r = s.post("/api/reset")
    assert r.status_code == 200, r.text  # was 409 "stop the running test" while the process exited
    wait_for(lambda: "downloader" not in s.children(), 10, "the downloader gone")
    time.sleep(0.5)
    assert s.stats()["status"] == "idle"


def test_a_clean_stop_logs_no_error_and_leaves_no_tmpfs_folder(tmp_path, server):
    """A router source polled on its asyncio loop (Debian's snmpd in a router namespace), then SIGTERM."""
    need(have_root_networking(), "needs root and iproute2 for the router namespace")
    import household
    from datacap.store import runtime_dir
    with household.household(tmp_path / "house") as h:
        (tmp_path / "house").mkdir(exist_ok=True)
        snmpd = h.snmpd()
        try:
            s = server(interfaces=[h.host_if], sources=[{"type": "snmp", "host": h.lan_ip, "community": "public",
                                                         "interface": "wan", "interval_seconds": 1}])
            wait_for(lambda: [x for x in s.get("/api/sources").json()["sources"] if x["type"] == "snmp"][0]["status"]
                     == "ok", 10, "the router answering")
            live = runtime_dir(s.data_dir)
            assert live.is_dir()
            s.stop()
            assert s.proc.returncode == 0
            log = s.log()
            assert "Task was destroyed" not in log and " ERROR " not in log, log[-2000:]
            assert not live.exists()
        finally:
            household.stop(snmpd)


def test_auto_with_no_upnp_gateway_on_the_lan_is_not_a_warning(tmp_path):
    """The default `sources` on a LAN without a UPnP router: this computer counts, and nothing is wrong."""
    need(have_root_networking(), "needs root and iproute2 for a LAN of its own")
    import json
    import subprocess
    import sys
    from conftest import ROOT
    with netns.veth_link() as link:  # a LAN with nobody answering SSDP
        config = tmp_path / "c.json"
        config.write_text(json.dumps({"probe_interval_minutes": None}))  # "sources": "auto", the default
        data = tmp_path / "data"
        p = link.run_in_ns([sys.executable, str(ROOT / "collector.py"), "--config", str(config), "--data-dir",
                            str(data)], stderr=subprocess.PIPE, text=True)
        try:
            from datacap.store import runtime_dir
            live = runtime_dir(data) / "collector.json"
            wait_for(lambda: [x for x in json.loads(live.read_text())["sources"] if x["type"] == "upnp"][0]["status"]
                     == "not_found", 15, "the search over")
        finally:
            p.terminate()
            err = p.communicate(timeout=10)[1]
        assert p.returncode == 0 and "WARNING" not in err and "ERROR" not in err, err
        assert "no UPnP gateway answered" in err


def test_the_dashboard_says_which_figure_stop_at_cap_stopped_on(server, fake_isp, chromium):  # noqa: F811
    s = server(test_urls=[fake_isp(rate_mbps=400).url()], data_cap_gb=1, stop_at_cap=True, alert_thresholds_percent=[],
               interfaces=["lo"], sources=[{"type": "local"}])  # the test's bytes (over loopback) are counted
    assert s.post("/api/usage/adjust", json={"used_gb": 0.98}).status_code == 201  # 20 MB to go
    assert s.post("/api/start").status_code == 200
    st = wait_for(lambda: (lambda x: x if x["status"] in ENDED else None)(s.stats()), 20, "the test to stop at the cap")
    assert st["status"] == "finished" and st["cap_stop"]["words"].endswith("since, headers included")
    p = chromium.new_page()
    try:
        p.goto(s.url + "/")
        words = f"(stopped on {st['cap_stop']['words']})"
        assert " of 1 GB: datacap's count as of " in words
        wait_for(lambda: words in (p.text_content("#reason") or ""), 15, "the reason with the figure it stopped on")
    finally:
        p.close()


def test_the_collector_loads_no_heavy_library_it_does_not_use_with_the_default_config():
    """Its RSS target (30 MB, bench/collector_footprint.py): the UPnP stack, SQLite, requests and the Prometheus
    parser load only for a gateway found, devices counted, a fleet agent set."""
    import subprocess
    import sys
    from harness import ROOT
    code = ("import sys, datacap.usage.collector; "
            "print(' '.join(m for m in ('aiohttp', 'async_upnp_client', 'pysnmp', 'sqlite3', 'requests', "
            "'prometheus_client') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_a_frozen_cap_figure_says_as_of_when_on_the_cap_panel_and_the_answer(server, chromium):  # noqa: F811
    s = server(interfaces=["dc-quiet0"], sources=[{"type": "local"}])
    wait_for(lambda: s.get("/api/usage").json()["cycle"].get("live"), 10, "a live count")
    p = chromium.new_page()
    pid = s.children()["collector"].pid
    try:
        p.goto(s.url + "/")
        wait_for(lambda: "Counting this computer" in (p.text_content("#cap-note") or ""), 15, "the live cap note")
        os.kill(pid, signal.SIGSTOP)  # frozen: its live file ages
        frozen = wait_for(lambda: s.get("/api/usage").json()["cycle"]["live"] is False, 15, "cycle.live false")
        assert frozen
        wait_for(lambda: "the collector is not counting now" in (p.text_content("#cap-note") or ""), 10,
                 "the cap panel's figure marked as of its count")
        assert "as of" in p.text_content("#answer-cap")
    finally:
        os.kill(pid, signal.SIGCONT)
        p.close()
    wait_for(lambda: s.get("/api/usage").json()["cycle"]["live"], 15, "live again")


def test_a_collector_with_a_30_s_interval_has_its_figures_out_at_once_after_a_restart(server):
    """Its first tick is an interval away: the live file is written at start, or /healthz and the dashboard
    wait up to 30 s (bench/chaos.py found it: a settings save to 30 s, then a server restart)."""
    s = server(interfaces=["dc-quiet0"], sources=[{"type": "local"}], update_interval_seconds=30)
    assert s.get("/healthz").status_code == 200  # the fixture waited at most 10 s for it
    s.stop()
    t0 = time.monotonic()
    s.start()
    assert time.monotonic() - t0 < 10 and s.get("/api/usage").json()["cycle"]["live"]
