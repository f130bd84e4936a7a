"""A household for tests: this host on the LAN of a "router" namespace that forwards to an "internet"
namespace, with a second LAN namespace beside us; Debian's snmpd and miniupnpd run in the router.

    host (dhl…) ── lan │ router │ wan ── up0 (internet: the fake ISP)
                       │        │ lan2 ── l2 (another LAN machine)

Addresses come from 10.237.0.0/16, inside namespaces this test made. Needs root.
"""
import contextlib
import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import netns
from harness import stop_process


@dataclass
class House:
    tag: str
    router: str
    internet: str
    lan2: str
    host_if: str
    lan_ip: str  # the router's LAN address (snmpd, miniupnpd)
    internet_ip: str
    lan2_ip: str
    folder: Path

    def ns_link(self, ns, ip):
        """A netns.Link for start_fake_isp in one of the namespaces."""
        return netns.Link(ns, self.host_if, "", ip)

    def wan_counters(self):
        """The router's WAN kernel counters (rx, tx), as its snmpd serves them."""
        r = netns.sh("ip", "netns", "exec", self.router, "cat", "/sys/class/net/wan/statistics/rx_bytes",
                     "/sys/class/net/wan/statistics/tx_bytes")
        rx, tx = r.stdout.split()
        return int(rx), int(tx)

    def snmpd(self, hide_64bit=False, stuck_value=False):
        """Start snmpd in the router (v2c community "public"); returns the process."""
        conf = self.folder / "snmpd.conf"
        lines = [f"agentAddress udp:{self.lan_ip}:161"]
        if hide_64bit:  # a router without ifHCInOctets/ifHCOutOctets: only the 32-bit counters
            lines += ["view nohc included .1", "view nohc excluded .1.3.6.1.2.1.31.1.1.1.6",
                      "view nohc excluded .1.3.6.1.2.1.31.1.1.1.10", "rocommunity public default -V nohc"]
        else:
            lines += ["rocommunity public"]
        if stuck_value:
            idx = netns.sh("ip", "netns", "exec", self.router, "cat", "/sys/class/net/wan/ifindex").stdout.strip()
            lines += [f"override .1.3.6.1.2.1.2.2.1.10.{idx} counter 4294967295"]
        conf.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(["ip", "netns", "exec", self.router, "snmpd", "-f", "-Lo", "-C", "-c", str(conf),
                                 "-p", str(self.folder / "snmpd.pid")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = subprocess.run(["snmpget", "-v2c", "-c", "public", "-t", "0.5", "-r", "0", self.lan_ip,
                                "1.3.6.1.2.1.1.3.0"], capture_output=True)
            if r.returncode == 0:
                return proc
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError("snmpd did not answer in the router namespace")

    def miniupnpd(self, port=5555):
        """Start miniupnpd in the router as the LAN's Internet Gateway Device; returns (process, URL)."""
        conf = self.folder / "miniupnpd.conf"
        conf.write_text(f"ext_ifname=wan\nlistening_ip=lan\nlistening_ip=lan2\nhttp_port={port}\nenable_natpmp=no\n"
                        f"enable_upnp=yes\nsecure_mode=yes\nsystem_uptime=yes\n"
                        f"uuid=3d3cec3a-8cf0-11e0-98ee-{int(self.tag):012x}\n"  # the same after a restart
                        f"lease_file={self.folder / 'upnp.leases'}\n"
                        "allow 1024-65535 10.237.0.0/16 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n")
        # its own pid file: two test routers at once must not see each other's
        proc = subprocess.Popen(["ip", "netns", "exec", self.router, "miniupnpd", "-d", "-f", str(conf),
                                 "-P", str(self.folder / "miniupnpd.pid")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://{self.lan_ip}:{port}/rootDesc.xml"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["curl", "-sf", "-m", "1", "-o", "/dev/null", url]).returncode == 0:
                return proc, url
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError("miniupnpd did not answer in the router namespace")


def pids_in(ns):
    """The processes running in a namespace (a daemon another process started, say)."""
    return [int(p) for p in netns.sh("ip", "netns", "pids", ns, check=False).stdout.split()]


def stop_pid(pid, timeout=5.0):
    """SIGTERM a process we may not be the parent of; SIGKILL if it has not gone (or turned zombie) in time."""
    if pid is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    return
            except (OSError, IndexError):
                return
            time.sleep(0.05)


def stop(proc):
    stop_process(proc, 5)


_serial = itertools.count()


@contextlib.contextmanager
def household(folder, wan_rate=None):
    """Yield a House; everything it made is removed afterwards, also on failure."""
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"  # several households in one process
    try:
        with netns.claim_subnet("10.237") as o:
            h = House(tag, f"dcr{tag}", f"dci{tag}", f"dclan{tag}", f"dhl{tag}", f"10.237.{o}.1", f"10.237.{o}.6",
                      f"10.237.{o}.10", Path(folder))
            _build(h, o, wan_rate)
        yield h
    finally:
        _remove(tag)


def _build(h, o, wan_rate):
    """The namespaces, veths, addresses and routes of the picture above."""
    sh, tag = netns.sh, h.tag
    for ns in (h.router, h.internet, h.lan2):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", h.host_if, "type", "veth", "peer", "name", f"dhr{tag}")
    sh("ip", "link", "set", f"dhr{tag}", "netns", h.router, "name", "lan")
    sh("ip", "link", "add", f"dwr{tag}", "type", "veth", "peer", "name", f"dwi{tag}")
    sh("ip", "link", "set", f"dwr{tag}", "netns", h.router, "name", "wan")
    sh("ip", "link", "set", f"dwi{tag}", "netns", h.internet, "name", "up0")
    sh("ip", "link", "add", f"d2r{tag}", "type", "veth", "peer", "name", f"d2l{tag}")
    sh("ip", "link", "set", f"d2r{tag}", "netns", h.router, "name", "lan2")
    sh("ip", "link", "set", f"d2l{tag}", "netns", h.lan2, "name", "l2")
    sh("ip", "addr", "add", f"10.237.{o}.2/30", "dev", h.host_if)
    sh("ip", "link", "set", h.host_if, "up")
    for cmd in (f"ip addr add {h.lan_ip}/30 dev lan", f"ip addr add 10.237.{o}.5/30 dev wan",
                f"ip addr add 10.237.{o}.9/30 dev lan2", "ip link set lan up", "ip link set wan up",
                "ip link set lan2 up", "ip link set lo up", "sysctl -qw net.ipv4.ip_forward=1"):
        sh("ip", "netns", "exec", h.router, *cmd.split())
    for ns, dev, ip, gw in ((h.internet, "up0", h.internet_ip, f"10.237.{o}.5"),
                            (h.lan2, "l2", h.lan2_ip, f"10.237.{o}.9")):
        for cmd in (f"ip addr add {ip}/30 dev {dev}", f"ip link set {dev} up", "ip link set lo up",
                    f"ip route add default via {gw}"):
            sh("ip", "netns", "exec", ns, *cmd.split())
    if wan_rate:  # the ISP's shaping of our downloads
        sh("ip", "netns", "exec", h.internet, "tc", "qdisc", "add", "dev", "up0", "root", "tbf", "rate", wan_rate,
           "burst", "256kb", "latency", "50ms")
    for net in (f"10.237.{o}.4/30", f"10.237.{o}.8/30"):
        sh("ip", "route", "add", net, "via", h.lan_ip)


def _remove(tag):
    """Delete the host's veth and the three namespaces, killing what still runs in them."""
    netns.remove((f"dcr{tag}", f"dci{tag}", f"dclan{tag}"), [f"dhl{tag}"])
