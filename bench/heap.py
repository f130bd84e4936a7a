"""JS heap of the dashboard over a long session of 1-s polling (issue: <= 10 % growth after minute 1).

    python bench/heap.py [--minutes 60]

Runs the real server and a fake ISP at 20 Mbit/s, opens the dashboard in headless Chromium,
presses Start, and reads Chromium's JSHeapUsedSize (after a forced GC) every minute.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import launch  # noqa: E402
from fake_isp import FakeISP  # noqa: E402
from harness import Server, exit_cleanly_on_sigterm  # noqa: E402


def heap_bytes(cdp):
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60)
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    isp = FakeISP(rate_mbps=20, jitter=0.1).start()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp, test_urls=[isp.url()], update_interval_seconds=1, stop_at_cap=False).start()
        try:
            with launch() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(server.url + "/")
                page.get_by_role("button", name="Start", exact=True).click()
                t0 = time.monotonic()
                samples = []
                while (elapsed := time.monotonic() - t0) < args.minutes * 60:
                    time.sleep(min(60, args.minutes * 60 - elapsed))
                    minute = (time.monotonic() - t0) / 60
                    samples.append((minute, heap_bytes(cdp)))
                    points = page.evaluate("n")
                    print(f"minute {minute:5.1f}: JS heap {samples[-1][1] / 1e6:.2f} MB, chart points {points}", flush=True)
                first, last = samples[0][1], samples[-1][1]
                print(f"heap after minute 1: {first / 1e6:.2f} MB; after {samples[-1][0]:.0f} min: {last / 1e6:.2f} MB; "
                      f"growth {100 * (last - first) / first:+.1f} % (target <= +10 %)")
                print(f"server status at the end: {server.stats()['status']}, session {server.stats()['total_gb']} GB")
        finally:
            server.stop()
            isp.close()


if __name__ == "__main__":
    main()
