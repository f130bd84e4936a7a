"""Take the README's dashboard screenshots (desktop 1280x800, phone 390x844) of a real session.

    python bench/screenshot.py [--out docs]

Starts a fake ISP that drops from 80 to 16 Mbit/s after 150 MB, the real server.py, presses
Start in headless Chromium and waits for the throttle banner before shooting.
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    args.out.mkdir(exist_ok=True)
    isp = FakeISP(rate_mbps=80, throttle_after_bytes=150_000_000, throttled_mbps=16, jitter=0.05).start()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp, test_urls=[isp.url()], update_interval_seconds=1, data_cap_gb=50, stop_at_cap=False,
                        session_limit_gb=20).start()
        try:
            with launch() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(server.url + "/")
                page.get_by_role("button", name="Start").click()
                page.locator("#throttle").wait_for(state="visible", timeout=60_000)
                time.sleep(6)
                page.screenshot(path=str(args.out / "dashboard-desktop.png"), full_page=False)
                page.set_viewport_size({"width": 390, "height": 844})
                time.sleep(1.5)
                page.screenshot(path=str(args.out / "dashboard-phone.png"), full_page=False)
                print(f"wrote {args.out / 'dashboard-desktop.png'} and {args.out / 'dashboard-phone.png'}")
        finally:
            server.stop()
            isp.close()


if __name__ == "__main__":
    main()
