"""Two connections of one household counted as two lines (issue: lines): a multi-WAN router namespace,
Debian's snmpd and nginx, policy routing and a failover (root)."""
import json
import subprocess
import sys
import time

import pytest

import multiwan
from conftest import ROOT, have_root_networking, need
from harness import free_port, wait_for, write_config

GB = 10 ** 9


@pytest.fixture
def router(tmp_path):
    need(have_root_networking(), "needs root and iproute2 for the router, ISP and client namespaces")
    for tool in ("snmpd", "snmpget", "nginx", "curl"):
        need(subprocess.run(["which", tool], capture_output=True).returncode == 0, f"needs Debian's {tool}")
    with multiwan.multiwan(tmp_path / "wan") as m:
        yield m


def traffic(m):
    """c1 out of WAN 1, c2 out of WAN 2, then WAN 2 fails over to WAN 1 for c2: >= 1 GB on each WAN."""
    runs = [subprocess.Popen(m.ns(m.clients[0]) + ["curl", "-s", "-o", "/dev/null", "-r", "0-1199999999",
                                                   f"http://{multiwan.SERVER_IP}/file.bin"]),
            subprocess.Popen(m.ns(m.clients[1]) + ["curl", "-s", "-o", "/dev/null", "-r", "0-1099999999",
                                                   f"http://{multiwan.SERVER_IP}/file.bin"])]
    for p in runs:
        assert p.wait(120) == 0
    m.send_out(2, 1)  # WAN 2 is down: the router sends c2 out of WAN 1
    m.download(2, 300_000_000)


def compare(m, figures, before):
    """Each line's figure against its WAN's kernel counters, once within 0.1 % (fails with both)."""
    seen = {}

    def close():
        seen.update(figures())
        for i, name in ((1, "WAN 1"), (2, "WAN 2")):
            rx, tx = m.wan_counters(i)
            kernel = rx + tx - before[i]
            seen[f"{name} kernel"] = kernel
            if abs(seen[name] - kernel) > 0.001 * kernel:
                return None
        return dict(seen)
    try:
        got = wait_for(close, 30, "each line within 0.1 % of its WAN veth")
    except AssertionError:
        raise AssertionError(f"lines vs kernel: {seen}") from None
    for name in ("WAN 1", "WAN 2"):
        k = got[f"{name} kernel"]
        print(f"{name}: line {got[name]:,} B, WAN veth {k:,} B ({100 * (got[name] - k) / k:+.4f} %)")
        assert k >= GB


def test_two_wans_counted_over_snmp_each_within_0_1_percent_through_a_failover(router, server):
    m = router
    snmpd = m.snmpd()
    try:
        src = {"type": "snmp", "host": m.mgmt_ip, "community": "public", "interval_seconds": 1}
        s = server(lines=[{"name": "WAN 1", "source": {**src, "interface": "wan1"}, "billing_day": 3},
                          {"name": "WAN 2", "source": {**src, "interface": "wan2"}, "data_cap_gb": 50}],
                   sources="auto", interfaces="auto")
        wait_for(lambda: all(x["status"] == "ok" for x in s.get("/api/sources").json()["sources"] if x["type"] == "snmp"),
                 15, "both WANs answering over SNMP")
        time.sleep(2)
        before = {i: sum(m.wan_counters(i)) for i in (1, 2)}
        traffic(m)

        def figures():
            return {b["name"]: b["cycle"]["used_bytes"] for b in s.get("/api/usage").json()["lines"]}
        compare(m, figures, before)
    finally:
        snmpd.terminate()
        snmpd.wait(5)


def test_two_wans_counted_on_the_multi_wan_box_itself_each_within_0_1_percent(router, tmp_path):
    m = router
    port = free_port()
    folder = tmp_path / "onbox"
    folder.mkdir()
    config = write_config(folder, port=port, sources="auto", interfaces="auto",
                          lines=[{"name": "WAN 1", "source": {"type": "local", "interfaces": ["wan1"]}},
                                 {"name": "WAN 2", "source": {"type": "local", "interfaces": ["wan2"]}}])
    server = subprocess.Popen(m.ns(m.router) + [sys.executable, str(ROOT / "server.py"), "--config", str(config),
                                                "--data-dir", str(folder / "data"), "--no-browser"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def api(path):
        out = subprocess.run(m.ns(m.router) + ["curl", "-sf", f"http://127.0.0.1:{port}{path}"], capture_output=True,
                             text=True, timeout=10).stdout
        return json.loads(out) if out else None
    try:
        wait_for(lambda: (api("/api/usage") or {}).get("lines") and api("/healthz"), 15, "datacap on the router")
        time.sleep(2)
        before = {i: sum(m.wan_counters(i)) for i in (1, 2)}
        traffic(m)
        compare(m, lambda: {b["name"]: b["cycle"]["used_bytes"] for b in api("/api/usage")["lines"]}, before)
    finally:
        server.terminate()
        server.wait(15)
