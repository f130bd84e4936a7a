"""The whole datacap system's CPU on a shaped link against curl's: server, collector, downloader, a dashboard polling.

    python bench/system_cpu.py [--rate 1gbit] [--seconds 20] [--pairs 3] [--streams 1] [--no-dashboard] [--py-spy DIR]

A network namespace of our own (10.234.0.0/16) joined by a veth pair; `tbf` in the namespace
shapes what it sends us to --rate; Debian's nginx in it serves a sparse file (sendfile on).
Each pair, alternating which goes first:
- curl -o /dev/null of the file: its CPU (user + system) over a --seconds window after a warm-up;
- the real server.py (which starts the collector), Start pressed, and a poller in this process
  doing what an open dashboard does (/api/stats?since= every second, interfaces every 2 s,
  system every 5 s, usage every 10 s, a full /api/stats every 60 s): the CPU of the server, the
  collector and the downloader over the same window. The poller's own CPU is the browser's, not
  the system's, and is not counted.
CPU is each process's user + system time from /proc (psutil); softirq work the kernel charges to
whichever process it interrupts falls on the receiving client in both cases. The bytes that
crossed the veth in the window are printed beside each figure, so both moved the same data.
--py-spy DIR records each datacap process with py-spy (raw collapsed stacks) during the window
and prints its hottest frames; the sampling costs CPU, so those CPU figures are not the result.
Needs root, iproute2, nginx and curl.
"""
import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Server, exit_cleanly_on_sigterm, wait_for  # noqa: E402
from nginx import Nginx  # noqa: E402
import netns  # noqa: E402

WARMUP_S = 4.0
FILE_BYTES = 10 ** 12  # sparse: costs nothing, outlasts any window



@contextlib.contextmanager
def shaped_link(rate):
    """(namespace, host-side interface, namespace address); removed on exit."""
    with netns.veth_link(rate, prefix="10.234", burst="256kb", latency="20ms") as link:
        yield link.ns, link.host_if, link.ns_ip


def rx_bytes(ifname):
    return int(Path(f"/sys/class/net/{ifname}/statistics/rx_bytes").read_text())


def cpu_seconds(procs):
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class Window:
    """CPU of some processes (by name) and bytes over the veth, between start() and end()."""

    def __init__(self, procs, ifname):
        self.procs, self.ifname = procs, ifname

    def start(self):
        self.cpu0 = {name: cpu_seconds([p]) for name, p in self.procs.items()}
        self.rx0, self.t0 = rx_bytes(self.ifname), time.monotonic()

    def end(self):
        wall = time.monotonic() - self.t0
        per = {name: 100 * (cpu_seconds([p]) - self.cpu0[name]) / wall for name, p in self.procs.items()}
        return {"cpu_percent": sum(per.values()), "per_process": per,
                "mbps": (rx_bytes(self.ifname) - self.rx0) * 8 / wall / 1e6}


def measure_curl(url, host_if, seconds):
    proc = subprocess.Popen(["curl", "-s", "-o", "/dev/null", url])
    try:
        time.sleep(WARMUP_S)
        w = Window({"curl": psutil.Process(proc.pid)}, host_if)
        w.start()
        time.sleep(seconds)
        return w.end()
    finally:
        proc.kill()
        proc.wait()


def dashboard(url, stop):
    """Poll like static/dashboard.js does while the tab is open."""
    session, last_t, polls = requests.Session(), None, 0
    while not stop.wait(1.0):
        full = last_t is None or polls % 60 == 0
        s = session.get(url + "/api/stats" + ("" if full else f"?since={last_t}"), timeout=5).json()
        if s["data_points"]:
            last_t = s["data_points"][-1]["t"]
        for every, path in ((2, "/api/interfaces"), (5, "/api/system"), (10, "/api/usage")):
            if polls % every == 0:
                session.get(url + path, timeout=5)
        polls += 1


def py_spy(procs, seconds, folder):
    """Start py-spy on each process; returns the recorders and their output files."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for name, p in procs.items():
        path = Path(folder) / f"{name}.txt"
        rec = subprocess.Popen(["py-spy", "record", "--nonblocking", "-r", "250", "-d", str(int(seconds)), "-f", "raw",
                                "-p", str(p.pid), "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((name, rec, path))
    return out


def print_hot_frames(recorders, top=6):
    for name, rec, path in recorders:
        rec.wait()
        inclusive, total = Counter(), 0
        if path.exists():
            for line in path.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                total += int(n)
                for frame in set(stack.split(";")):
                    if "datacap/" in frame or "flask/" in frame or "waitress/" in frame or "json/" in frame:
                        inclusive[frame] += int(n)
        print(f"    py-spy {name}: {total} samples; the frames most often on the stack:")
        for frame, n in inclusive.most_common(top):
            print(f"      {100 * n / max(total, 1):5.1f} % {frame}")


def measure_datacap(url, host_if, seconds, streams, spy_dir, polling=True):
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp, test_urls=[url], update_interval_seconds=1, stop_at_cap=False).start()
        stop = threading.Event()
        try:
            assert server.post("/api/start", json={"streams": streams}).status_code == 200
            wait_for(lambda: server.stats()["speed_mbps"] > 0, 15, "a running session")
            if polling:
                threading.Thread(target=dashboard, args=(server.url, stop), daemon=True).start()
            time.sleep(WARMUP_S)
            children = server.children()
            procs = {"server": psutil.Process(server.proc.pid), **children}
            w = Window(procs, host_if)
            recorders = py_spy(procs, seconds, spy_dir) if spy_dir else []
            w.start()
            time.sleep(seconds)
            result = w.end()
            print_hot_frames(recorders)
            return result
        finally:
            stop.set()
            server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", default="1gbit")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--py-spy", dest="spy_dir", help="record the datacap processes with py-spy into this folder")
    p.add_argument("--no-dashboard", dest="polling", action="store_false",
                   help="no poller: what the dashboard costs the server is the difference")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (a network namespace and a veth pair)")
    exit_cleanly_on_sigterm()
    if args.spy_dir:
        os.makedirs(args.spy_dir, exist_ok=True)
    results = {"curl": [], "datacap": []}
    with shaped_link(args.rate) as (ns, host_if, ns_ip):
        server = Nginx(FILE_BYTES, host=ns_ip, port=8080, prefix=["ip", "netns", "exec", ns]).start()
        try:
            print(f"{args.rate} tbf veth, nginx {server.url}, {args.seconds:g}-s windows after {WARMUP_S:g} s, "
                  f"datacap with {args.streams} stream(s), {'a' if args.polling else 'no'} dashboard polling; "
                  f"{os.cpu_count()} CPUs")
            for k in range(args.pairs):
                load = os.getloadavg()[0]
                order = ["curl", "datacap"] if k % 2 == 0 else ["datacap", "curl"]
                line = []
                for name in order:
                    r = (measure_curl(server.url, host_if, args.seconds) if name == "curl" else
                         measure_datacap(server.url, host_if, args.seconds, args.streams, args.spy_dir, args.polling))
                    results[name].append(r)
                    per = ", ".join(f"{n} {c:.1f}" for n, c in r["per_process"].items()) if name == "datacap" else ""
                    line.append(f"{name} {r['cpu_percent']:5.1f} % of a core at {r['mbps']:4.0f} Mbit/s"
                                + (f" ({per})" if per else ""))
                print(f"  pair {k + 1} (load {load:4.2f}): " + " | ".join(line), flush=True)
        finally:
            server.stop()
    c = statistics.median(r["cpu_percent"] for r in results["curl"])
    d = statistics.median(r["cpu_percent"] for r in results["datacap"])
    pair = statistics.median(a["cpu_percent"] / b["cpu_percent"] for a, b in zip(results["datacap"], results["curl"]))
    per_byte = statistics.median((a["cpu_percent"] / a["mbps"]) / (b["cpu_percent"] / b["mbps"])
                                 for a, b in zip(results["datacap"], results["curl"]))
    print(f"median CPU: whole datacap system {d:.1f} % of a core, curl {c:.1f} % -> {d / c:.2f}x curl "
          f"(median of pair ratios {pair:.2f}x; per byte moved {per_byte:.2f}x; target <= 1.1x)")


if __name__ == "__main__":
    main()
