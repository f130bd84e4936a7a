"""A real link for tests: a network namespace joined to this one by a veth pair, optionally shaped.

The namespace is the fake ISP's host; the host-side veth is a real interface with real kernel
counters. Addresses are from 10.231.0.0/16 inside our own namespace only. Needs root.
"""
import contextlib
import fcntl
import itertools
import os
import subprocess
import sys
from dataclasses import dataclass


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Link:
    ns: str
    host_if: str
    host_ip: str
    ns_ip: str

    def run_in_ns(self, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], **kw)


@contextlib.contextmanager
def claim_subnet(prefix):
    """An octet o with no address of this host in prefix.o.0/24, chosen under a host-wide lock.

    Hold it while adding the addresses: parallel test workers then never pick the same subnet.
    """
    with open("/tmp/datacap-test-subnets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = sh("ip", "-4", "-o", "addr", "show").stdout + sh("ip", "-4", "route", "show").stdout
        for o in [(os.getpid() + i) % 250 + 1 for i in range(250)]:
            if f"{prefix}.{o}." not in used:
                yield o
                return
        raise RuntimeError(f"no free subnet left in {prefix}.0.0/16")


_serial = itertools.count()


@contextlib.contextmanager
def veth_link(rate=None, prefix="10.231", burst="64kb", latency="50ms"):
    """Yield a Link; `rate` like "80mbit" shapes what the namespace sends toward us (our download).

    Every test and bench that needs a namespace builds it here: a free /30 in prefix.x.0 (claimed under
    a host-wide lock, so parallel workers never collide) and names unique to this process and link.
    """
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"
    ns, host_if, ns_if = f"dcisp{tag}", f"dch{tag}", f"dcn{tag}"
    try:
        with claim_subnet(prefix) as octet:
            host_ip, ns_ip = f"{prefix}.{octet}.1", f"{prefix}.{octet}.2"
            _make_link(ns, host_if, ns_if, host_ip, ns_ip)
        link = Link(ns, host_if, host_ip, ns_ip)
        if rate:
            shape(link, rate, burst, latency)
        yield link
    finally:
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def remove(namespaces, links=()):
    """Delete host-side links and namespaces, killing what still runs in them (cleanup, also after a failure)."""
    for name in links:
        sh("ip", "link", "del", name, check=False)
    for ns in namespaces:
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", ns, check=False)


def ns_if(link):
    """The namespace's end of a Link's veth pair."""
    return link.host_if.replace("dch", "dcn", 1)


def shape(link, rate, burst="64kb", latency="50ms"):
    """What the namespace sends us goes out at `rate` (tbf on its interface); replaces any earlier rate."""
    sh("ip", "netns", "exec", link.ns, "tc", "qdisc", "replace", "dev", ns_if(link), "root", "tbf", "rate", rate,
       "burst", burst, "latency", latency)


def _make_link(ns, host_if, ns_if, host_ip, ns_ip):
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
    sh("ip", "link", "set", ns_if, "netns", ns)
    sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")


def start_fake_isp(link, **flags):
    """The fake ISP inside the namespace; returns (process, base URL)."""
    here = os.path.dirname(os.path.abspath(__file__))
    argv = [sys.executable, os.path.join(here, "fake_isp.py"), "--host", link.ns_ip]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    proc = link.run_in_ns(argv, stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://{link.ns_ip}:{port}"


def kernel_counters(name):
    with open(f"/sys/class/net/{name}/statistics/rx_bytes") as rx, open(f"/sys/class/net/{name}/statistics/tx_bytes") as tx:
        return int(rx.read()), int(tx.read())
