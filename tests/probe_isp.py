"""A fake ISP that throttles on the bytes that crossed its link in total, for probe tests and benches.

`throttling_link(...)` is a veth pair into a network namespace (10.236.0.0/16, names `dcp…`) with a
`tbf` rate on what the ISP sends us; a `Controller` thread reads the host-side veth counters (rx +
tx, every byte of any traffic, as the collector counts them) and switches the rate at N bytes, and
back when told to lift. `Background` is other traffic on the same link (a household's download).
Needs root.
"""
import contextlib
import threading
import time
import urllib.request

from netns import kernel_counters, ns_if, shape, veth_link


def set_rate(link, ns_if, rate, burst="64kb"):
    shape(link, rate, burst)


@contextlib.contextmanager
def veth(rate, burst="64kb"):
    """Yield (Link, ISP-side interface name): a namespace behind a veth pair shaped to `rate`."""
    with veth_link(rate, prefix="10.236", burst=burst) as link:
        yield link, ns_if(link)


def link_bytes(link):
    rx, tx = kernel_counters(link.host_if)
    return rx + tx


class Controller:
    """Switch the link to `throttled` once `after_bytes` have crossed it (counted from `start()`)."""

    def __init__(self, link, ns_if, normal, throttled, after_bytes, burst="64kb"):
        self.link, self.ns_if, self.normal, self.throttled = link, ns_if, normal, throttled
        self.after_bytes, self.burst = after_bytes, burst
        self.base = None
        self.crossed_at_bytes = self.lifted_at_bytes = None
        self._lift = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="isp-controller")

    def start(self):
        self.base = link_bytes(self.link)
        self._thread.start()
        return self

    def used(self):
        return link_bytes(self.link) - self.base

    def lift(self):
        self._lift.set()

    def close(self):
        self._stop.set()
        self._thread.join(2)

    def _run(self):
        while not self._stop.wait(0.005):
            if self.crossed_at_bytes is None and self.used() >= self.after_bytes:
                set_rate(self.link, self.ns_if, self.throttled, self.burst)
                self.crossed_at_bytes = self.used()
            if self.crossed_at_bytes is not None and self._lift.is_set() and self.lifted_at_bytes is None:
                set_rate(self.link, self.ns_if, self.normal, self.burst)
                self.lifted_at_bytes = self.used()


class Background:
    """Other traffic on the link: downloads of a given size, or one that runs until stopped."""

    def __init__(self, base_url):
        self.base_url = base_url
        self._stop = threading.Event()
        self._thread = None

    def fetch(self, nbytes):
        """Download nbytes now (blocking); return the bytes read."""
        got = 0
        with urllib.request.urlopen(f"{self.base_url}/stream?bytes={int(nbytes)}", timeout=60) as r:
            while not self._stop.is_set():
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
        return got

    def fill(self):
        """Start an endless download in a thread: the link is busy until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.fetch, args=(10 ** 13,), daemon=True, name="background")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        time.sleep(0)
