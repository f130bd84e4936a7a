"""50 concurrent pollers against /api/stats during a running session: requests/s, p50/p99 latency, errors.

    python bench/load.py [--clients 50] [--seconds 15] [--warmup 3] [--unshared]

The real server.py runs a real session (downloader from a fake ISP at 100 Mbit/s, collector).
Each client polls as the dashboard does (`/api/stats?since=<last point>`, a full one first),
back to back on its own keep-alive connection; identical polls share an answer for 0.1 s
(web/shared_polls.py), and --unshared makes every request unique (a header with a count) so
none is: the whole app answers each. The clients are coroutines on one asyncio loop speaking
plain HTTP/1.1, so that on a small machine the load generator costs the server as little CPU as
it can (a thread per client with requests costs about as much as the server).
Latency is from the request's first byte sent to its response's last byte read. The 1-minute
load average is printed: other work on the machine spoils the figure. So is the number of lines
the server logged meanwhile (a line per request would flood the journal).
"""
import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from harness import Server, exit_cleanly_on_sigterm, wait_for  # noqa: E402
from system_cpu import print_hot_frames, py_spy  # noqa: E402

REQUEST_IDS = itertools.count()


async def read_response(reader):
    """(status, body) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, length = int(head[9:12]), 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def poller(host, port, end, counting_from, out, unshared=False):
    """One dashboard, polling back to back until `end`; records latencies after `counting_from`.
    unshared: every request carries a header of its own, so no answer is shared."""
    since, conn = None, None
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            reader, writer = conn
            path = "/api/stats" + ("" if since is None else f"?since={since}")
            t = time.perf_counter()
            extra = f"X-Poll: {next(REQUEST_IDS)}\r\n" if unshared else ""
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
            status, body = await read_response(reader)
            took = time.perf_counter() - t
            if time.monotonic() >= counting_from:
                out["lat"].append(took)
                if status != 200:
                    out["errors"].append(status)
            if status == 200:
                points = json.loads(body)["data_points"]
                if points:
                    since = points[-1]["t"]
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            out["errors"].append(repr(exc))
            conn = None


async def load(host, port, clients, warmup, seconds, unshared):
    out = {"lat": [], "errors": []}
    start = time.monotonic()
    await asyncio.gather(*(poller(host, port, start + warmup + seconds, start + warmup, out, unshared)
                           for _ in range(clients)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--unshared", action="store_true",
                   help="every request unique, so none shares an answer (web/shared_polls.py)")
    p.add_argument("--py-spy", dest="spy_dir", help="record the server with py-spy into this folder (costs it CPU)")
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    isp = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_isp.py"), "--rate-mbps", "100"],
                           stdout=subprocess.PIPE, text=True)
    isp_url = f"http://127.0.0.1:{int(isp.stdout.readline())}/stream"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(tmp, test_urls=[isp_url], update_interval_seconds=1).start()
            try:
                server.post("/api/start")
                wait_for(lambda: server.stats()["speed_mbps"] > 0, 10, "a running session")
                load_before = os.getloadavg()[0]
                log_before = server.log_path.read_bytes().count(b"\n")
                spy = py_spy({"server": server.proc}, args.warmup + args.seconds, args.spy_dir) if args.spy_dir else []
                out = asyncio.run(load("127.0.0.1", server.port, args.clients, args.warmup, args.seconds, args.unshared))
                print_hot_frames(spy, top=12)
                status = server.stats()["status"]
                log_lines = server.log_path.read_bytes().count(b"\n") - log_before
            finally:
                server.stop()
    finally:
        isp.terminate()
        isp.wait()
    lat = sorted(out["lat"])
    print(f"{args.clients} {'unshared ' if args.unshared else ''}pollers for {args.seconds:g} s during a running session ({status}), "
          f"load {load_before:.2f} before: {len(lat) / args.seconds:.0f} requests/s (target >= 2000), "
          f"p50 {1000 * statistics.median(lat):.1f} ms, p99 {1000 * lat[int(len(lat) * 0.99) - 1]:.1f} ms "
          f"(target <= 50 ms), errors {len(out['errors'])} (target 0)" +
          (f": {sorted(set(map(str, out['errors'])))[:3]}" if out["errors"] else "") +
          f"; the server logged {log_lines} lines meanwhile")


if __name__ == "__main__":
    main()
