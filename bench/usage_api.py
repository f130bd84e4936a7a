"""A year of usage data: how big usage.json gets and how fast /api/usage answers over HTTP.

    python bench/usage_api.py

Builds a ledger by running the real Collector for 366 simulated days (two interfaces, a sample
every 10 minutes, fake clocks), then starts the real server.py on it and times 200 requests.
"""
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import config  # noqa: E402
from datacap.usage.collector import Collector  # noqa: E402
from harness import Server, exit_cleanly_on_sigterm  # noqa: E402


def build_year(data_dir):
    state = {"t": 0.0, "wall": datetime.now().astimezone() - timedelta(days=366), "c": {"eth0": [0, 0], "wlan0": [0, 0]}}
    cfg = config.validate({"interfaces": ["eth0", "wlan0"]})
    c = Collector(cfg, data_dir, data_dir, read_counters=lambda: {k: tuple(v) for k, v in state["c"].items()},
                  boot_time=lambda: 1.0, clock=lambda: state["t"], now=lambda: state["wall"], link_bps=lambda n: 1.25e9)
    c.start()
    for _ in range(366 * 24 * 6):
        state["t"] += 600
        state["wall"] += timedelta(seconds=600)
        state["c"]["eth0"][0] += 300_000_000
        state["c"]["eth0"][1] += 20_000_000
        state["c"]["wlan0"][0] += 50_000_000
        c.tick()
    c.flush(state["t"], state["wall"])


def main():
    exit_cleanly_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "s" / "data"
        data.mkdir(parents=True)
        t0 = time.monotonic()
        build_year(data)
        size = (data / "usage.json").stat().st_size
        print(f"simulated year built in {time.monotonic() - t0:.0f} s: usage.json {size / 1e3:.1f} KB (target < 300 KB)")
        server = Server(Path(tmp) / "s", interfaces=["eth0", "wlan0"]).start()
        try:
            session = requests.Session()
            times = []
            for _ in range(200):
                t = time.perf_counter()
                r = session.get(server.url + "/api/usage", timeout=5)
                times.append((time.perf_counter() - t) * 1000)
                assert r.ok and len(r.json()["daily"]) >= 366
            times.sort()
            print(f"GET /api/usage over HTTP with a year of data: median {statistics.median(times):.1f} ms, "
                  f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms (target < 20 ms), {len(r.content) / 1e3:.0f} KB response")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
