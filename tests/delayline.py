"""Real links with the faults users have, for tests and benches (root; this kernel has no netem).

- `DelayLine`: a userspace delay line between two TUN devices: every packet read from one is
  written to the other after `delay_s`, dropped with probability `loss`, and all of them are
  dropped while `down` (an outage);
- `tun_link(...)`: a network namespace (the fake ISP's host) reached from this one only through a
  delay line; `veth_link(...)`: one joined by a veth pair; addresses from 10.235.0.0/16, a /30
  that no interface here uses yet (other tests and benches build links at the same time);
- `shape(...)` sets a `tbf` rate on what the ISP sends us; `police(...)` drops what exceeds a rate
  with no queue (a tiny-limit `tbf` on an `ifb` fed by an ingress redirect on our side), as a
  cellular policer does; `per_flow(...)` gives each server port its own `htb` class.
"""
import contextlib
import itertools
import fcntl
import os
import random
import select
import struct
import threading
import time
from collections import deque

import netns

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MTU_READ = 65536


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class DelayLine:
    """Two one-way pipes between TUN file descriptors, each a reader and a timed writer thread."""

    def __init__(self, fd_a, fd_b, delay_s=0.0, loss=0.0, seed=1):
        self.fds = (fd_a, fd_b)
        self.delay_s, self.loss = delay_s, loss
        self.down = False
        self.dropped = self.passed = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        a, b = self.fds
        for src, dst in ((a, b), (b, a)):
            q, ready = deque(), threading.Condition()
            self._threads += [threading.Thread(target=self._read, args=(src, q, ready), daemon=True),
                              threading.Thread(target=self._write, args=(dst, q, ready), daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)

    def _read(self, fd, q, ready):
        while not self._stop.is_set():
            if not select.select([fd], [], [], 0.2)[0]:
                continue
            try:
                pkt = os.read(fd, MTU_READ)
            except OSError:
                return
            if self.down or (self.loss and self._rng.random() < self.loss):
                self.dropped += 1
                continue
            with ready:
                q.append((time.monotonic() + self.delay_s, pkt))
                ready.notify()

    def _write(self, fd, q, ready):
        while not self._stop.is_set():
            with ready:
                if not q:
                    ready.wait(0.2)
                    continue
                due, pkt = q[0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.2))
                continue
            with ready:
                q.popleft()
            if self.down:  # in flight when the link went down: lost
                self.dropped += 1
                continue
            try:
                os.write(fd, pkt)
                self.passed += 1
            except OSError:
                pass


def sh(*args, check=True):
    return netns.sh(*args, check=check)


def in_ns(ns, *args, check=True):
    return sh("ip", "netns", "exec", ns, *args, check=check)


_serial = itertools.count()



def veth_link(rate=None):
    """netns.veth_link in 10.235.x (names dch…/dcn…, which isp_if and policer_ready know)."""
    return netns.veth_link(rate, prefix="10.235")


@contextlib.contextmanager
def tun_link(delay_ms=0, loss=0.0):
    """Yield (netns.Link, DelayLine): the ISP's namespace behind a userspace delay line.

    `delay_ms` is one way (the RTT is twice it); `loss` applies to each direction.
    """
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"
    ns, host_if, ns_if = f"dcl{tag}", f"dcta{tag}", f"dctb{tag}"
    fds, line = [], None
    try:
        with netns.claim_subnet("10.235") as octet:
            host_ip, ns_ip = f"10.235.{octet}.1", f"10.235.{octet}.2"
            sh("ip", "netns", "add", ns)
            fds = [open_tun(host_if), open_tun(ns_if)]
            sh("ip", "link", "set", ns_if, "netns", ns)
            sh("ip", "addr", "add", f"{host_ip}/32", "peer", f"{ns_ip}/32", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        in_ns(ns, "ip", "addr", "add", f"{ns_ip}/32", "peer", f"{host_ip}/32", "dev", ns_if)
        in_ns(ns, "ip", "link", "set", ns_if, "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
        line = DelayLine(fds[0], fds[1], delay_ms / 1000, loss).start()
        yield netns.Link(ns, host_if, host_ip, ns_ip), line
    finally:
        if line:
            line.close()
        for fd in fds:
            os.close(fd)
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def isp_if(link):
    """The ISP-side interface of a veth_link or tun_link."""
    return link.host_if.replace("dch", "dcn").replace("dcta", "dctb")


def shape(link, rate, burst="64kb", latency="50ms"):
    """What the ISP sends us goes out at `rate` (tbf on its interface); replaces any earlier rate."""
    in_ns(link.ns, "tc", "qdisc", "replace", "dev", isp_if(link), "root", "tbf", "rate", rate,
          "burst", burst, "latency", latency)


def unshape(link):
    in_ns(link.ns, "tc", "qdisc", "del", "dev", isp_if(link), "root", check=False)


@contextlib.contextmanager
def policer_ready(link):
    """An ifb on our side fed by an ingress redirect of the link; police() then sets its rate."""
    ifb = "dcf" + link.host_if[4:] if link.host_if.startswith("dcta") else "dcf" + link.host_if[3:]
    try:  # MTU-sized packets: a 64 KB GSO packet would meet the one-packet queue as one burst
        in_ns(link.ns, "ethtool", "-K", isp_if(link), "tso", "off", "gso", "off")
        sh("ethtool", "-K", link.host_if, "gro", "off", check=False)
        sh("ip", "link", "add", ifb, "type", "ifb")
        sh("ip", "link", "set", ifb, "up")
        sh("tc", "qdisc", "add", "dev", link.host_if, "handle", "ffff:", "ingress")
        sh("tc", "filter", "add", "dev", link.host_if, "parent", "ffff:", "protocol", "all", "u32", "match",
           "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb)
        yield ifb
    finally:
        sh("tc", "qdisc", "del", "dev", link.host_if, "ingress", check=False)
        sh("ip", "link", "del", ifb, check=False)


def police(ifb, rate_bps, burst_bytes=None):
    """Drop, never queue, what arrives above `rate_bps`: a tbf whose queue holds one packet."""
    burst = burst_bytes or max(3000, int(rate_bps / 8 * 1.0))  # about a second, as ISPs size them
    sh("tc", "qdisc", "replace", "dev", ifb, "root", "tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst),
       "limit", "1600")


def unpolice(ifb):
    sh("tc", "qdisc", "del", "dev", ifb, "root", check=False)


def per_flow(link, line_rate, flow_rate, ports):
    """Each server port in `ports` gets its own htb class at `flow_rate` under a `line_rate` root."""
    dev = isp_if(link)
    in_ns(link.ns, "tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "99")
    in_ns(link.ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", line_rate)
    in_ns(link.ns, "tc", "class", "add", "dev", dev, "parent", "1:1", "classid", "1:99", "htb", "rate", line_rate)
    for i, port in enumerate(ports, start=10):
        in_ns(link.ns, "tc", "class", "add", "dev", dev, "parent", "1:1", "classid", f"1:{i}", "htb", "rate",
              flow_rate, "ceil", flow_rate)
        in_ns(link.ns, "tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "u32", "match", "ip",
              "sport", str(port), "0xffff", "flowid", f"1:{i}")
