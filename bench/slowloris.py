"""Slow clients can't take the dashboard away: dashboard answer times while 300 slow connections are held.

    python bench/slowloris.py [--conns 300] [--seconds 60] [--line-every 15] [--lan]

An attacker holds `--conns` half-open requests ("GET / HTTP/1.1", then one header line every
15 s, never the blank line that ends the headers) and opens a new one for each the server drops,
so the count stays up. Meanwhile a probe fetches the dashboard once a second on a fresh
connection, as a browser that just came along would. Prints every probe's time and the worst.

--lan: the token-protected server bound to 10.233.x.2 inside a network namespace (root), attacked
and probed from the host end of a veth pair; the probe sends the token, the attacker does not.
"""
import argparse
import contextlib
import json
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
from harness import Server, exit_cleanly_on_sigterm, free_port, wait_for  # noqa: E402
from datacap import store  # noqa: E402
import netns  # noqa: E402

PROBE_TIMEOUT_S = 30


class Slowloris(threading.Thread):
    """Keeps `conns` slow, never-finished requests open against host:port."""

    def __init__(self, host, port, conns, every_s):
        super().__init__(daemon=True)
        self.addr, self.conns, self.every_s = (host, port), conns, every_s
        self.sel = selectors.DefaultSelector()
        self.next_line = {}  # socket -> when it sends its next header line
        self.opened = self.dropped = self.failed = 0
        self.stopping = False

    def open_one(self):
        s = socket.socket(socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET)
        s.settimeout(2)
        try:
            s.connect(self.addr)
            s.sendall(f"GET /?{self.opened} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n".encode())
        except OSError:
            s.close()
            self.failed += 1
            return
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ)
        self.next_line[s] = time.monotonic() + self.every_s
        self.opened += 1

    def close_one(self, s):
        self.sel.unregister(s)
        self.next_line.pop(s, None)
        s.close()
        self.dropped += 1

    def run(self):
        while not self.stopping:
            for _ in range(50):  # top up a few at a time, so dropped ones come back within a second
                if len(self.next_line) < self.conns:
                    self.open_one()
            now = time.monotonic()
            for s, due in list(self.next_line.items()):
                if due <= now:
                    try:
                        s.send(b"X-Slow: 1\r\n")
                        self.next_line[s] = now + self.every_s
                    except OSError:
                        self.close_one(s)
            for key, _ in self.sel.select(timeout=0.1):  # the server answered (408/400) or closed: gone
                try:
                    key.fileobj.recv(4096)
                    gone = True
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    self.close_one(key.fileobj)

    @property
    def held(self):
        return len(self.next_line)

    def stop(self):
        self.stopping = True
        self.join(5)
        for s in list(self.next_line):
            s.close()


def probe(url, headers):
    """Seconds until the dashboard arrived whole on a fresh connection (PROBE_TIMEOUT_S if it did not)."""
    t = time.perf_counter()
    try:
        r = requests.get(url, headers={**headers, "Connection": "close"}, timeout=PROBE_TIMEOUT_S)
        ok = r.status_code == 200 and "<title>datacap</title>" in r.text
    except requests.RequestException:
        ok = False
    return time.perf_counter() - t, ok


def attack(host, port, url, headers, args, label):
    loris = Slowloris(host, port, args.conns, args.line_every)
    loris.start()
    wait_for(lambda: loris.held >= args.conns, 30, f"{args.conns} slow connections open")
    print(f"{label}: {loris.held} slow connections open; probing {url} once a second for {args.seconds:.0f} s")
    times, bad, end = [], 0, time.monotonic() + args.seconds
    while time.monotonic() < end:
        start = time.monotonic()
        took, ok = probe(url, headers)
        times.append(took)
        bad += not ok
        print(f"  t={args.seconds - (end - start):5.1f} s  dashboard {took * 1000:7.1f} ms  {'ok' if ok else 'FAILED'}"
              f"  (held {loris.held}, dropped by the server so far {loris.dropped})", flush=True)
        time.sleep(max(0.0, 1 - (time.monotonic() - start)))
    loris.stop()
    times.sort()
    print(f"{label}: {len(times)} probes, {bad} failed; median {times[len(times) // 2] * 1000:.1f} ms, "
          f"worst {times[-1] * 1000:.1f} ms (target <= 1000 ms); {loris.opened} slow connections opened, "
          f"{loris.dropped} dropped by the server, {loris.failed} connects failed; load {os.getloadavg()[0]:.2f}")
    return times[-1] <= 1.0 and bad == 0


def loopback(args):
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp).start()
        try:
            return attack("127.0.0.1", server.port, server.url + "/", {}, args, "loopback")
        finally:
            server.stop()
            shutil.rmtree(store.runtime_dir(server.data_dir), ignore_errors=True)



@contextlib.contextmanager
def namespace():
    """A namespace joined to ours by a veth pair: (name, our address, its address) in 10.233.x.0/30."""
    with netns.veth_link(prefix="10.233") as link:
        yield link.ns, link.host_ip, link.ns_ip


def lan(args):
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp, namespace() as (ns, _, ns_ip):
        port = free_port()
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps({"test_urls": ["http://127.0.0.1:9/none"], "host": ns_ip, "port": port,
                                   "auth_token": token}))
        data_dir = Path(tmp) / "data"
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(HERE.parent / "server.py"),
                                     "--config", str(cfg), "--data-dir", str(data_dir), "--no-browser"],
                                    stdout=log, stderr=subprocess.STDOUT)
        url = f"http://{ns_ip}:{port}/"
        try:
            wait_for(lambda: requests.get(url + "healthz", timeout=1).status_code in (200, 503), 15, "the LAN server")
            return attack(ns_ip, port, url, {"Authorization": f"Bearer {token}"}, args, f"LAN {ns_ip} with token")
        finally:
            proc.terminate()
            proc.wait(15)
            shutil.rmtree(store.runtime_dir(data_dir), ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conns", type=int, default=300)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--line-every", type=float, default=15, help="seconds between one slow header line and the next")
    p.add_argument("--lan", action="store_true", help="the token server in a network namespace (root)")
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    ok = lan(args) if args.lan else loopback(args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
