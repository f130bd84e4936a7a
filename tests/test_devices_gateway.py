"""datacap on a real gateway (issue 26): network namespaces, Debian's dnsmasq handing out leases on a bridge, nftables
NAT to a WAN namespace with nginx behind tbf; datacap's server and collector run in the gateway's namespace.

Each device's cycle figure against its client veth's kernel counters, the devices and the gateway's own traffic
against the WAN counter, a budget pausing a device (its veth flat, the others moving), one notification, unpause,
restarts, and no nftables table but datacap's changed. Root."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

import gateway
from conftest import ROOT, have_root_networking, need
from harness import free_port, wait_for, write_config

MB = 10 ** 6
NAMES = ["laptop", "tv", "phone", "console", "tablet"]
TOKEN = "gw-test-token-7c1e94a2b5d3"


@pytest.fixture
def home(tmp_path):
    need(have_root_networking(), "needs root and iproute2 for the gateway, client and internet namespaces")
    for tool in ("dnsmasq", "udhcpc", "nginx", "nft", "curl"):
        need(shutil.which(tool) is not None, f"needs Debian's {tool}")
    with gateway.home(tmp_path / "home") as h:
        yield h


class GatewayServer:
    """server.py (and so the collector) in the gateway's namespace; its API asked with curl from there."""

    def __init__(self, h, **config):
        self.h, self.port = h, free_port()
        self.config = write_config(h.folder, port=self.port, interfaces="auto", update_interval_seconds=1,
                                   devices={"lan": ["lan"], "leases": [str(h.leases)], **config.pop("devices", {})},
                                   **config)
        self.proc = None

    def start(self):
        log = open(self.h.folder / "server.log", "ab")
        self.proc = subprocess.Popen(self.h.ns(self.h.gateway) + [
            sys.executable, str(ROOT / "server.py"), "--config", str(self.config), "--data-dir",
            str(self.h.folder / "data"), "--no-browser"], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: (self.get("/api/devices") or {}).get("live"), 20, "datacap counting devices on the gateway")
        return self

    def curl(self, path, *args, ns=None, host="127.0.0.1"):
        """(HTTP status, body) of a request from a namespace (the gateway's own by default)."""
        r = subprocess.run(self.h.ns(ns or self.h.gateway) + ["curl", "-s", "-m", "5", "-w", "\n%{http_code}", *args,
                                                              f"http://{host}:{self.port}{path}"],
                           capture_output=True, text=True)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def get(self, path):
        code, body = self.curl(path)
        return json.loads(body) if code == 200 else None

    def post(self, path, body=None, *args, **kw):
        return self.curl(path, "-X", "POST", "-H", "Content-Type: application/json", "-d", json.dumps(body or {}), *args,
                         **kw)

    def device(self, mac):
        return next((d for d in self.get("/api/devices")["devices"] if d["mac"] == mac), {})

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)

    def log(self):
        return (self.h.folder / "server.log").read_text(errors="replace")


def test_each_device_within_half_a_percent_of_its_veth_and_devices_with_the_gateway_add_up_to_the_wan(home):
    h = home
    h.lan_up(NAMES)
    h.v6_address(3)
    s = GatewayServer(h).start()
    try:
        time.sleep(1.5)
        before = {i: sum(h.client_counters(i)) for i in range(1, 6)}
        wan0, first = sum(h.wan_counters()), s.get("/api/devices")
        dev0 = {d["mac"]: d["cycle_bytes"] for d in first["devices"]}
        line0 = first["lines"][0]
        sizes = [20 * MB, 100 * MB, 300 * MB, 600 * MB, 1000 * MB]
        for p in [h.download(i, n, v6=(i == 3)) for i, n in enumerate(sizes, 1)]:  # the phone over IPv6
            assert p.wait(120) == 0
        time.sleep(2.5)  # two collector ticks
        got = s.get("/api/devices")
        wan = sum(h.wan_counters()) - wan0
        devices = {d["mac"]: d for d in got["devices"]}
        for i, (name, n) in enumerate(zip(NAMES, sizes), 1):
            d = devices[h.macs[i - 1]]
            kernel = sum(h.client_counters(i)) - before[i]
            figure = d["cycle_bytes"] - dev0.get(d["mac"], 0)
            print(f"{name}: device {figure:,} B, client veth {kernel:,} B ({100 * (figure - kernel) / kernel:+.4f} %)"
                  f"{' over IPv6' if i == 3 else ''}")
            assert d["name"] == name
            assert abs(figure - kernel) <= 0.005 * kernel and kernel >= n
        assert any(":" in a for a in devices[h.macs[2]]["addresses"])
        line = got["lines"][0]
        mine = line["devices_bytes"] - line0["devices_bytes"]
        own = line["gateway_bytes"] - line0["gateway_bytes"]
        unattributed = line["unattributed_bytes"] - line0["unattributed_bytes"]
        counted = line["line_bytes"] - line0["line_bytes"]
        print(f"WAN veth {wan:,} B; line {counted:,} B; devices {mine:,} + unattributed {unattributed:,} "
              f"(the gateway's own, measured: {own:,}) = {mine + unattributed:,} ({100 * (mine + unattributed - wan) / wan:+.5f} %); "
              f"devices + the gateway's own measured: {100 * (mine + own - wan) / wan:+.5f} %")
        assert abs(mine + unattributed - wan) <= 0.001 * wan and abs(counted - wan) <= 0.001 * wan
        assert abs(mine + own - wan) <= 0.001 * wan  # each part measured on its own, not a difference
    finally:
        s.stop()


def first_growth(h, i, after, step=100_000):
    """When client i's veth first received more than `step` bytes in one 20-ms sample after `after`, or None."""
    rows = [r for r in h.samples(i) if r[0] > after]
    return next((b[0] for a, b in zip(rows, rows[1:]) if b[1] - a[1] > step), None)


def _pause_at(rows, base, budget):
    """(when the veth had carried the budget, when its downloads stopped: the last sample whose rx grew)."""
    reach = next(t for t, rx, tx in rows if rx + tx - base >= budget)
    grew = [t for (t, rx, _), (_, rx0, _) in zip(rows[1:], rows) if rx - rx0 > 2000]
    return reach, max(grew)


def test_a_device_at_its_budget_is_paused_within_2s_notified_once_let_through_and_paused_across_restarts(home):
    h = home
    h.lan_up(NAMES[:3])
    foreign = {t: h.ruleset(t) for t in gateway.FOREIGN_TABLES}
    hook, bodies = h.webhook_sink()
    tv = h.macs[1]
    budget = 50 * MB
    s = GatewayServer(h, webhook_url=hook, devices={"budgets": {tv: {"gb": budget / 1e9, "per": "day"}}}).start()
    try:
        time.sleep(1.5)
        base = sum(h.client_counters(2))
        for i in (1, 2, 3):
            h.sample(i)
            h.keep_downloading(i)
        wait_for(lambda: s.device(tv).get("paused"), 30, "the tv paused at its budget")
        time.sleep(3)
        rows = h.samples(2)
        reach, stopped = _pause_at(rows, base, budget)
        print(f"budget {budget:,} B reached at +{reach - rows[0][0]:.2f} s; its downloads stopped {stopped - reach:.2f} s later")
        assert stopped - reach <= 2.0
        after = [r for r in rows if r[0] > stopped + 0.1]
        assert after and after[-1][1] - after[0][1] <= 2000  # its veth: nothing more arrives
        for i in (1, 3):  # the others still move
            others = [r for r in h.samples(i) if r[0] > stopped]
            assert others[-1][1] - others[0][1] >= 10 * MB
        assert s.device(tv)["pause_reason"] == "budget" and s.device(tv)["name"] == "tv"

        time.sleep(4)  # the notifier scans every 2 s: one message, however often it looks
        sent = [json.loads(x) for x in bodies.read_text().splitlines()]
        assert [b["event"] for b in sent] == ["device_budget"] and "tv reached its budget of 0.05 GB today" in sent[0]["text"]

        t0 = time.monotonic()
        assert s.post(f"/api/devices/{tv}/unpause")[0] == 202
        back = wait_for(lambda: first_growth(h, 2, t0), 10, "the tv downloading again")
        print(f"unpaused: downloading again {back - t0:.2f} s after the request")
        assert back - t0 <= 2.0
        time.sleep(2)
        assert not s.device(tv)["paused"]  # over its budget, let through for the rest of the day

        assert s.post(f"/api/devices/{tv}/pause", {"until": "tomorrow"})[0] == 202
        wait_for(lambda: s.device(tv).get("paused"), 5, "paused again")
        time.sleep(1)
        s.stop()  # a restart: the kernel keeps the pause while datacap is down
        t1 = time.monotonic()
        s.start()
        time.sleep(1)
        assert s.device(tv)["paused"] and s.device(tv)["paused_until"]
        assert first_growth(h, 2, t1, 2000) is None
        s.stop()
        h.sh(h.gateway, "nft", "delete", "table", "inet", "datacap")  # as a reboot would: datacap's rules are gone
        assert wait_for(lambda: first_growth(h, 2, time.monotonic() - 0.5), 10, "the tv downloading without the rules")
        s.start()  # returns once the collector has written its first devices.json: the rules are back by then
        t2 = time.monotonic()
        time.sleep(3)
        print(f"after a restart with datacap's table gone: paused again; rx after the start {first_growth(h, 2, t2, 2000)}")
        assert first_growth(h, 2, t2, 2000) is None and s.device(tv)["paused"]
        assert {t: h.ruleset(t) for t in gateway.FOREIGN_TABLES} == foreign
        tables = h.sh(h.gateway, "nft", "list", "tables").stdout.split("\n")
        assert sorted(x.strip() for x in tables if x.strip()) == sorted(
            [f"table {t}" for t in gateway.FOREIGN_TABLES] + ["table inet datacap"])
        assert len([x for x in bodies.read_text().splitlines() if x]) == 1
    finally:
        s.stop()


def test_a_paused_device_still_reaches_the_dashboard_but_cannot_unpause_itself_without_the_token(home):
    h = home
    h.lan_up(NAMES[:2])
    tv = h.macs[1]
    s = GatewayServer(h, host=h.lan_ip, auth_token=TOKEN)
    s.start = lambda: s  # its API needs the token: started and waited for below
    log = open(h.folder / "server.log", "ab")
    s.proc = subprocess.Popen(h.ns(h.gateway) + [sys.executable, str(ROOT / "server.py"), "--config", str(s.config),
                                                 "--data-dir", str(h.folder / "data"), "--no-browser"],
                              stdout=log, stderr=subprocess.STDOUT)
    auth = ("-H", f"Authorization: Bearer {TOKEN}")
    lan = {"ns": h.clients[1], "host": h.lan_ip}  # the tv itself, on the LAN
    try:
        wait_for(lambda: s.curl("/api/devices", *auth, host=h.lan_ip)[0] == 200 and
                 json.loads(s.curl("/api/devices", *auth, host=h.lan_ip)[1])["live"], 20, "datacap on the LAN address")
        h.keep_downloading(2)
        wait_for(lambda: any(d["mac"] == tv for d in json.loads(s.curl("/api/devices", *auth, host=h.lan_ip)[1])["devices"]),
                 10, "the tv counted")
        assert s.post(f"/api/devices/{tv}/pause", None, *auth, host=h.lan_ip)[0] == 202
        wait_for(lambda: json.loads(s.curl("/api/devices", *auth, host=h.lan_ip)[1])["devices"][0]["paused"], 5, "paused")
        assert s.curl("/", **lan)[0] == 200  # the dashboard (its sign-in page) is still reachable from the paused tv
        assert s.post(f"/api/devices/{tv}/unpause", **lan)[0] == 401  # no token
        assert s.post(f"/api/devices/{tv}/unpause", None, "-H", "Authorization: Bearer wrong-token-0123456789", **lan)[0] == 401
        assert s.post(f"/api/devices/{tv}/unpause", None, *auth, "-H", "Origin: http://evil.example", **lan)[0] == 403
        assert s.post(f"/api/devices/{tv}/unpause", None, *auth, "-H", "Host: evil.example", **lan)[0] == 403
        assert s.curl(f"/api/devices/{tv}/budget", "-X", "PUT", "-d", '{"gb": 99}', **lan)[0] == 401
        time.sleep(1.5)
        d = json.loads(s.curl("/api/devices", *auth, host=h.lan_ip)[1])["devices"][0]
        assert d["mac"] == tv and d["paused"]
        assert s.post(f"/api/devices/{tv}/unpause", None, *auth, **lan)[0] == 202  # the owner, with the token
    finally:
        s.stop()
