"""Take the README's screenshots of a real session: desktop (1280x800) and phone (390x844), light and dark.

    python bench/screenshot.py [--out docs]

Starts a fake ISP (80 Mbit/s, 16 after 150 MB), the real server.py, presses Start in headless
Chromium and shoots five views, each as docs/<view>-<desktop|phone>-<light|dark>.png:
running (before the drop), throttled (the banner), outage (the link silent for 15 s, then back),
history (after Stop) and report (the test's evidence page).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import launch  # noqa: E402
from fake_isp import FakeISP  # noqa: E402
from harness import Server, exit_cleanly_on_sigterm, wait_for  # noqa: E402

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SCHEMES = ("light", "dark")


def shoot(page, out, view, scroll_to=None):
    """Four pictures of what the page shows now."""
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            if scroll_to:
                page.locator(scroll_to).scroll_into_view_if_needed()
            time.sleep(1.2)  # a poll and a redraw at the new size and colours
            page.screenshot(path=str(out / f"{view}-{size}-{scheme}.png"))
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(SIZES["desktop"])
    page.evaluate("window.scrollTo(0, 0)")
    print(f"wrote {view}-*.png")


def outage(isp, page, seconds=15):
    """The link goes silent (a rate of nearly nothing), then comes back at the throttled speed."""
    before = page.evaluate("(stats.events || []).filter((e) => e.kind === 'outage').length")
    isp.link.update(throttled_mbps=1e-6)
    time.sleep(seconds)
    with isp.link.lock:
        isp.link.throttled_mbps, isp.link._next_t = 16, 0.0  # the fake's pacing clock starts afresh
    wait_for(lambda: page.evaluate("(stats.events || []).filter((e) => e.kind === 'outage' && e.end).length")
             > before, 30, "the outage to end")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    args.out.mkdir(exist_ok=True)
    isp = FakeISP(rate_mbps=80, throttle_after_bytes=150_000_000, throttled_mbps=16, jitter=0.05).start()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp, test_urls=[isp.url()], update_interval_seconds=1, data_cap_gb=50, stop_at_cap=False,
                        session_limit_gb=20, baseline_seconds=5).start()
        try:
            with launch() as browser:
                page = browser.new_page(viewport=SIZES["desktop"])
                page.goto(server.url + "/")
                page.get_by_role("button", name="Start", exact=True).click()
                wait_for(lambda: page.evaluate("stats && stats.baseline_speed != null && n > 8"), 30, "a baseline")
                shoot(page, args.out, "running")
                page.locator("#throttle").wait_for(state="visible", timeout=60_000)
                time.sleep(6)
                shoot(page, args.out, "throttled")
                outage(isp, page)
                time.sleep(5)
                shoot(page, args.out, "outage", scroll_to="#chart")
                page.get_by_role("button", name="Stop", exact=True).click()
                page.locator("#history-list li").first.wait_for(timeout=15_000)
                shoot(page, args.out, "history", scroll_to="#history")
                page.locator("#history-list li a").first.click()
                page.wait_for_selector("#report[aria-busy=false]")
                shoot(page, args.out, "report")
        finally:
            server.stop()
            isp.close()


if __name__ == "__main__":
    main()
