"""50 concurrent pollers against /api/stats during a running session: requests/s, p99, errors.

    python bench/load.py [--clients 50] [--seconds 15]

Each client polls like the dashboard does (`/api/stats?since=<last point>`), back to back, in
one of 50 threads spread over 10 processes, so the client side is not the bottleneck.
"""
import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_isp import FakeISP  # noqa: E402
from harness import Server, wait_for, exit_cleanly_on_sigterm  # noqa: E402


def one_poller(url, end, lat, errors):
    session, since = requests.Session(), None
    while time.monotonic() < end:
        q = "" if since is None else f"?since={since}"
        t = time.perf_counter()
        try:
            r = session.get(url + "/api/stats" + q, timeout=5)
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors.append(r.status_code)
            elif r.json()["data_points"]:
                since = r.json()["data_points"][-1]["t"]
        except requests.RequestException as exc:
            errors.append(repr(exc))


def poller(url, seconds, clients):
    """One worker process runs `clients` concurrent pollers (threads); returns latencies and errors."""
    lat, errors, end = [], [], time.monotonic() + seconds
    threads = [threading.Thread(target=one_poller, args=(url, end, lat, errors)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, len(errors)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--workers", type=int, default=10)
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    isp = FakeISP(rate_mbps=100).start()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp, test_urls=[isp.url()], update_interval_seconds=1).start()
        try:
            server.post("/api/start")
            wait_for(lambda: server.stats()["speed_mbps"] > 0, 10, "a running session")
            per = args.clients // args.workers
            with ProcessPoolExecutor(args.workers) as pool:
                futures = [pool.submit(poller, server.url, args.seconds, per) for _ in range(args.workers)]
                results = [f.result() for f in futures]
            lat = sorted(x for r in results for x in r[0])
            errors = sum(r[1] for r in results)
            status = server.stats()["status"]
        finally:
            server.stop()
            isp.close()
    print(f"{args.clients} pollers for {args.seconds:.0f} s during a running session ({status}): "
          f"{len(lat) / args.seconds:.0f} requests/s (target >= 300), p50 {1000 * statistics.median(lat):.1f} ms, "
          f"p99 {1000 * lat[int(len(lat) * 0.99) - 1]:.1f} ms (target <= 250 ms), errors {errors} (target 0)")


if __name__ == "__main__":
    main()
