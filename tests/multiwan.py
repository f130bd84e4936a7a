"""A multi-WAN router for tests: two WAN veths to two "ISP" namespaces (each nginx behind its own tbf),
two LAN clients sent out different WANs by policy routing, a management link to this host; snmpd in the router.

    c1 ── lan1 │        │ wan1 ── isp1 (nginx on 198.51.100.1, tbf)
    c2 ── lan2 │ router │ wan2 ── isp2 (nginx on 198.51.100.1, tbf)
    host ─ mgmt│        │

Both ISPs answer at the same address, as the internet does: which WAN a client's download crosses is the
router's choice (ip rule from the client's address), so a failover moves a client without changing its URL.
Addresses from 10.238.0.0/16, inside namespaces this test made. Needs root.
"""
import contextlib
import itertools
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import netns
from nginx import Nginx

SERVER_IP = "198.51.100.1"
_serial = itertools.count()


@dataclass
class MultiWan:
    tag: str
    o: int
    folder: Path
    router: str
    isps: tuple
    clients: tuple
    host_if: str
    mgmt_ip: str  # the router's address on the management link (snmpd)

    def ns(self, name):
        return ["ip", "netns", "exec", name]

    def client_ip(self, i):
        return f"10.238.{self.o}.{4 * i - 2}"

    def wan_counters(self, i):
        """The router's wanI kernel counters (rx, tx)."""
        r = netns.sh(*self.ns(self.router), "cat", f"/sys/class/net/wan{i}/statistics/rx_bytes",
                     f"/sys/class/net/wan{i}/statistics/tx_bytes")
        rx, tx = r.stdout.split()
        return int(rx), int(tx)

    def download(self, client, nbytes):
        """A LAN client downloads nbytes from the internet, through whichever WAN the router sends it."""
        subprocess.run(self.ns(self.clients[client - 1]) + ["curl", "-s", "-o", "/dev/null", "-r", f"0-{nbytes - 1}",
                                                           f"http://{SERVER_IP}/file.bin"], check=True)

    def send_out(self, client, wan):
        """Policy routing: the client's traffic leaves by wanN (a failover is a change of this)."""
        sh = netns.sh
        sh(*self.ns(self.router), "ip", "rule", "del", "from", self.client_ip(client), check=False)
        sh(*self.ns(self.router), "ip", "rule", "add", "from", self.client_ip(client), "lookup", str(100 + wan),
           "pref", "100")
        sh(*self.ns(self.router), "ip", "route", "flush", "cache")

    def snmpd(self):
        conf = self.folder / "snmpd.conf"
        conf.write_text(f"agentAddress udp:{self.mgmt_ip}:161\nrocommunity public\n")
        proc = subprocess.Popen(self.ns(self.router) + ["snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-p",
                                                        str(self.folder / "snmpd.pid")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["snmpget", "-v2c", "-c", "public", "-t", "0.5", "-r", "0", self.mgmt_ip,
                               "1.3.6.1.2.1.1.3.0"], capture_output=True).returncode == 0:
                return proc
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError("snmpd did not answer in the router namespace")


@contextlib.contextmanager
def multiwan(folder, rate="400mbit", file_bytes=4 * 10 ** 9):
    """Yield a MultiWan with nginx running at both ISPs; everything is removed afterwards, also on failure."""
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    servers = []
    try:
        with netns.claim_subnet("10.238") as o:
            m = MultiWan(tag, o, folder, f"dmr{tag}", (f"dmi1{tag}", f"dmi2{tag}"), (f"dmc1{tag}", f"dmc2{tag}"),
                         f"dmh{tag}", f"10.238.{o}.14")
            _build(m, rate)
        for isp in m.isps:
            servers.append(Nginx(file_bytes, host=SERVER_IP, port=80, prefix=m.ns(isp)).start())
        yield m
    finally:
        for s in servers:
            s.stop()
        _remove(tag)


def _pair(a_ns, a_name, b_ns, b_name, tag, key):
    sh = netns.sh
    sh("ip", "link", "add", f"dma{key}{tag}", "type", "veth", "peer", "name", f"dmb{key}{tag}")
    for end, ns, name in ((f"dma{key}{tag}", a_ns, a_name), (f"dmb{key}{tag}", b_ns, b_name)):
        if ns is None:
            sh("ip", "link", "set", end, "name", name)
        else:
            sh("ip", "link", "set", end, "netns", ns, "name", name)


def _build(m, rate):
    sh, o, r = netns.sh, m.o, m.router
    for ns in (r, *m.isps, *m.clients):
        sh("ip", "netns", "add", ns)
    _pair(None, m.host_if, r, "mgmt", m.tag, "m")
    sh("ip", "addr", "add", f"10.238.{o}.13/30", "dev", m.host_if)
    sh("ip", "link", "set", m.host_if, "up")
    cmds = {r: [f"ip addr add {m.mgmt_ip}/30 dev mgmt", "ip link set mgmt up", "ip link set lo up",
                "sysctl -qw net.ipv4.ip_forward=1"]}
    for i in (1, 2):
        _pair(r, f"lan{i}", m.clients[i - 1], "eth0", m.tag, f"l{i}")
        _pair(r, f"wan{i}", m.isps[i - 1], "toward", m.tag, f"w{i}")
        lan, wan = 4 * (i - 1), 16 + 4 * (i - 1)  # .1/.2 on lanI, .17/.18 and .21/.22 on the WANs
        cmds[r] += [f"ip addr add 10.238.{o}.{lan + 1}/30 dev lan{i}", f"ip link set lan{i} up",
                    f"ip addr add 10.238.{o}.{wan + 1}/30 dev wan{i}", f"ip link set wan{i} up",
                    f"ip route add default via 10.238.{o}.{wan + 2} table {100 + i}"]
        cmds[m.clients[i - 1]] = [f"ip addr add 10.238.{o}.{lan + 2}/30 dev eth0", "ip link set eth0 up",
                                  "ip link set lo up", f"ip route add default via 10.238.{o}.{lan + 1}"]
        cmds[m.isps[i - 1]] = [f"ip addr add 10.238.{o}.{wan + 2}/30 dev toward", "ip link set toward up",
                               "ip link set lo up", f"ip addr add {SERVER_IP}/32 dev lo",
                               f"ip route add 10.238.{o}.0/24 via 10.238.{o}.{wan + 1}",
                               f"tc qdisc add dev toward root tbf rate {rate} burst 256kb latency 50ms"]
    for ns, lines in cmds.items():
        for line in lines:
            sh("ip", "netns", "exec", ns, *line.split())
    for i in (1, 2):
        m.send_out(i, i)


def _remove(tag):
    netns.remove((f"dmr{tag}", f"dmi1{tag}", f"dmi2{tag}", f"dmc1{tag}", f"dmc2{tag}"), [f"dmh{tag}"])
