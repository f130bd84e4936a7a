"""A home gateway for tests: LAN clients on a bridge get leases from Debian's dnsmasq; the gateway NATs IPv4 to a WAN
namespace where nginx sits behind a tbf, and routes IPv6 there (no NAT, as ISPs hand out prefixes).

    c1 ─┐
    c2 ─┤ lan (bridge)  │ gateway │ wan ── internet (nginx on 198.51.100.1 and 2001:db8:dc::1, tbf on up0)
    ... ┘  10.239.o.1/25, fd00:239:o::1/64 (RA)      10.239.o.129/30, fd01:239:o::1/64

Every namespace, veth and daemon is this test's own (names carry the pid), removed afterwards, also on failure;
nothing is made in the host's namespace, so parallel workers cannot collide. The gateway's NAT and a small
firewall are the test's own nftables tables (`dctest_nat`, `dctest_fw`): datacap must leave them as they are.
Needs root, dnsmasq, udhcpc, nginx, nft.
"""
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import netns
from nginx import Nginx

SERVER4, SERVER6 = "198.51.100.1", "2001:db8:dc::1"
FOREIGN_TABLES = ("ip dctest_nat", "inet dctest_fw")
UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc calls this with the lease in its environment; only this namespace's eth0 and routes change
case "$1" in
  bound|renew) ip -4 addr flush dev "$interface"; ip -4 addr add "$ip/$mask" dev "$interface"
               [ -n "$router" ] && ip -4 route replace default via "$router" dev "$interface" ;;
esac
exit 0
"""
FOREIGN = """table ip dctest_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade
    }
}
table inet dctest_fw {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state invalid drop
        tcp dport 23 counter drop
    }
}
"""
SAMPLER = """
import sys, time
dev = "/sys/class/net/eth0/statistics/"
out = open(sys.argv[1], "a", buffering=1)
while True:
    out.write(f"{time.monotonic():.4f} {open(dev + 'rx_bytes').read().strip()} {open(dev + 'tx_bytes').read().strip()}\\n")
    time.sleep(0.02)
"""
SINK = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
out = open(sys.argv[1], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        out.write(self.rfile.read(int(self.headers["Content-Length"])).decode() + "\\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""
LOOP = """
import socket, sys, time
host, rate = sys.argv[1], float(sys.argv[2])  # download again and again at `rate` bytes/s
family = socket.AF_INET6 if ":" in host else socket.AF_INET
while True:  # a stalled transfer (a paused device) is dropped after 0.5 s and tried again
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(0.3)
        s.connect((host, 80))
        s.settimeout(0.5)
        s.sendall(b"GET /file.bin HTTP/1.1\\r\\nHost: x\\r\\nRange: bytes=0-999999999\\r\\n\\r\\n")
        t0, got = time.monotonic(), 0
        while True:
            n = len(s.recv(65536))
            if not n:
                break
            got += n
            ahead = got / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
"""
_serial = itertools.count()


@dataclass
class Home:
    tag: str
    o: int
    folder: Path
    gateway: str
    internet: str
    clients: list = field(default_factory=list)  # namespace names
    macs: list = field(default_factory=list)
    procs: list = field(default_factory=list)

    @property
    def leases(self):
        return self.folder / "dnsmasq.leases"

    @property
    def lan_ip(self):
        return f"10.239.{self.o}.1"

    def ns(self, name):
        return ["ip", "netns", "exec", name]

    def sh(self, name, *argv, check=True):
        return netns.sh(*self.ns(name), *argv, check=check)

    def counters(self, name, dev):
        r = self.sh(name, "cat", f"/sys/class/net/{dev}/statistics/rx_bytes", f"/sys/class/net/{dev}/statistics/tx_bytes")
        rx, tx = r.stdout.split()
        return int(rx), int(tx)

    def client_counters(self, i):
        """(rx, tx) of client i's veth, in its own namespace (i from 1)."""
        return self.counters(self.clients[i - 1], "eth0")

    def wan_counters(self):
        return self.counters(self.gateway, "wan")

    def dnsmasq(self):
        """Debian's dnsmasq on the LAN bridge: DHCPv4 leases (names from the clients) and router advertisements."""
        o = self.o
        proc = subprocess.Popen(self.ns(self.gateway) + [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--interface=lan",
            "--bind-interfaces", f"--dhcp-range=10.239.{o}.100,10.239.{o}.120,255.255.255.128,12h",
            f"--dhcp-range=fd00:239:{o}::,ra-only,64", "--enable-ra", "--dhcp-authoritative",
            f"--dhcp-leasefile={self.leases}", f"--pid-file={self.folder / 'dnsmasq.pid'}", "--user=root",
            "--group=root", f"--log-facility={self.folder / 'dnsmasq.log'}"], stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq did not start: {proc.stderr.read()}")
        return proc

    def lan_up(self, names):
        """dnsmasq on the LAN, the clients' links up, and a lease for each of the first len(names) clients."""
        self.dnsmasq()
        up(self)
        for i, name in enumerate(names, 1):
            self.lease(i, name)

    def lease(self, i, hostname):
        """Client i asks for a DHCPv4 lease (udhcpc), sending its hostname; returns its address."""
        script = self.folder / "udhcpc.sh"
        if not script.exists():
            script.write_text(UDHCPC_SCRIPT)
            script.chmod(0o755)
        r = self.sh(self.clients[i - 1], "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1",
                    "-x", f"hostname:{hostname}", "-s", str(script))
        out = self.sh(self.clients[i - 1], "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
        if "inet" not in out:
            raise RuntimeError(f"client {i} got no lease: {r.stdout} {r.stderr}")
        return out[out.index("inet") + 1].split("/")[0]

    def v6_address(self, i, timeout=15):
        """Client i's global IPv6 address from the router advertisement (SLAAC), once it is usable."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.sh(self.clients[i - 1], "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global").stdout
            if "inet6" in out and "tentative" not in out:
                return out.split()[out.split().index("inet6") + 1].split("/")[0]
            time.sleep(0.2)
        raise RuntimeError(f"client {i} got no IPv6 address from the router advertisement")

    def download(self, i, nbytes, v6=False, rate=None):
        """Client i downloads nbytes from the internet (curl; rate like "5M" paces it); returns the process."""
        url = f"http://[{SERVER6}]/file.bin" if v6 else f"http://{SERVER4}/file.bin"
        argv = ["curl", "-s", "-o", "/dev/null", "-r", f"0-{nbytes - 1}", url]
        if rate:
            argv[1:1] = ["--limit-rate", rate]
        return subprocess.Popen(self.ns(self.clients[i - 1]) + argv)

    def sample(self, i):
        """Client i's veth counters every 20 ms into a file (monotonic time, rx, tx); read them with samples(i)."""
        path = self.folder / f"samples{i}.txt"
        self.procs.append(subprocess.Popen(self.ns(self.clients[i - 1]) + [sys.executable, "-c", SAMPLER, str(path)]))
        return path

    def samples(self, i):
        rows = []
        for line in (self.folder / f"samples{i}.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                rows.append((float(parts[0]), int(parts[1]), int(parts[2])))
        return rows

    def keep_downloading(self, i, rate=10 ** 7, v6=False):
        """Client i downloads again and again at `rate` bytes/s; a stalled transfer is given up after 0.5 s."""
        proc = subprocess.Popen(self.ns(self.clients[i - 1]) + [sys.executable, "-c", LOOP, SERVER6 if v6 else SERVER4,
                                                                str(rate)])
        self.procs.append(proc)
        return proc

    def webhook_sink(self):
        """A webhook receiver on the gateway's loopback (where datacap runs); returns (URL, file of bodies)."""
        path = self.folder / "webhooks.jsonl"
        proc = subprocess.Popen(self.ns(self.gateway) + [sys.executable, "-c", SINK, str(path)], stdout=subprocess.PIPE,
                                text=True)
        self.procs.append(proc)
        return f"http://127.0.0.1:{proc.stdout.readline().strip()}/hook", path

    def ruleset(self, table):
        """A foreign table as nft lists it, counters left out."""
        return self.sh(self.gateway, "nft", "-s", "list", "table", *table.split()).stdout


def _build(h, n_clients, rate):
    o, gw, net, sh = h.o, h.gateway, h.internet, netns.sh
    for ns in (gw, net, *h.clients):
        sh("ip", "netns", "add", ns)
    run = lambda ns, line: sh("ip", "netns", "exec", ns, *line.split())  # noqa: E731
    sh("ip", "-n", gw, "link", "add", "wan", "type", "veth", "peer", "name", "up0", "netns", net)
    for line in ("ip link add lan type bridge", f"ip addr add {h.lan_ip}/25 dev lan", f"ip addr add fd00:239:{o}::1/64 dev lan",
                 "ip link set lan up", f"ip addr add 10.239.{o}.129/30 dev wan", f"ip addr add fd01:239:{o}::1/64 dev wan",
                 "ip link set wan up", "ip link set lo up", f"ip route add default via 10.239.{o}.130",
                 f"ip -6 route add default via fd01:239:{o}::2", "sysctl -qw net.ipv4.ip_forward=1",
                 "sysctl -qw net.ipv6.conf.all.forwarding=1"):
        run(gw, line)
    for line in (f"ip addr add 10.239.{o}.130/30 dev up0", f"ip addr add fd01:239:{o}::2/64 dev up0", "ip link set up0 up",
                 "ip link set lo up", f"ip addr add {SERVER4}/32 dev lo", f"ip addr add {SERVER6}/128 dev lo",
                 f"ip -6 route add fd00:239:{o}::/64 via fd01:239:{o}::1",
                 f"tc qdisc add dev up0 root tbf rate {rate} burst 256kb latency 50ms"):
        run(net, line)
    for i, ns in enumerate(h.clients, 1):
        mac = f"02:dc:{o:02x}:00:00:{i:02x}"
        h.macs.append(mac)
        sh("ip", "-n", gw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        run(gw, f"ip link set p{i} master lan")
        run(gw, f"ip link set p{i} up")
        run(ns, f"ip link set eth0 address {mac}")
        run(ns, "ip link set lo up")
    subprocess.run(h.ns(gw) + ["nft", "-f", "-"], input=FOREIGN, text=True, check=True)


def up(h):
    """The clients' links up (after dnsmasq, so their router solicitations find it)."""
    for ns in h.clients:
        netns.sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")


@contextlib.contextmanager
def home(folder, n_clients=5, rate="1gbit", file_bytes=2 * 10 ** 9):
    """Yield a Home with nginx running on the internet side; everything is removed afterwards, also on failure."""
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with netns.claim_subnet("10.239") as o:
        pass  # the octet only spreads parallel homes over addresses; everything lives in namespaces
    h = Home(tag, o, folder, f"dgw{tag}", f"dnet{tag}", [f"dcl{i}{tag}" for i in range(1, n_clients + 1)])
    server = None
    try:
        _build(h, n_clients, rate)
        server = Nginx(file_bytes, host=SERVER4, port=80, prefix=h.ns(h.internet), also=(f"[{SERVER6}]",)).start()
        yield h
    finally:
        if server:
            server.stop()
        for p in h.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns in (h.gateway, h.internet, *h.clients):
            for pid in netns.sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            netns.sh("ip", "netns", "del", ns, check=False)  # its veths, bridge and nftables tables go with it
