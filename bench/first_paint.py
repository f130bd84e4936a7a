"""Time from navigation to the first data painted on the dashboard (localhost, headless Chromium).

    python bench/first_paint.py [--loads 10]

"Painted" means the first /api/stats answer is on screen: the page's own clock at the animation frame
after the connection badge says "live" (a MutationObserver injected before the page's scripts
notes it), so Playwright's round trips are not counted. Each load is a fresh browser context:
nothing cached. The machine's load average is printed beside the
figure: on 2 shared cores it moves the median more than any change to the page.
"""
import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import launch  # noqa: E402
from harness import Server, exit_cleanly_on_sigterm  # noqa: E402

# Runs before the page's scripts (injected by the browser, so the page's CSP does not apply): the
# frame after the badge first reads "live" is the frame that paints the first data.
WATCH_LIVE = """
new MutationObserver((_, obs) => {
  const conn = document.getElementById('conn');
  if (conn && conn.textContent === 'live') {
    obs.disconnect();
    requestAnimationFrame(() => { window.__painted = performance.now(); });
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loads", type=int, default=10)
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp).start()
        try:
            with launch() as browser:
                times = []
                for _ in range(args.loads):
                    page = browser.new_page()  # a fresh page: nothing cached in memory
                    page.add_init_script(WATCH_LIVE)
                    page.goto(server.url + "/")
                    page.wait_for_function("() => window.__painted !== undefined")  # a function: CSP forbids eval
                    times.append(page.evaluate("window.__painted"))
                    page.close()
        finally:
            server.stop()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"first data painted after navigation: median {statistics.median(times):.0f} ms, "
          f"worst {max(times):.0f} ms over {len(times)} loads (target: median <= 300 ms); load {load}")


if __name__ == "__main__":
    main()
