"""Headless Debian Chromium driven by Playwright, with nothing allowed to leave the machine."""
import contextlib
import os
import shutil

CHROMIUM = os.environ.get("DATACAP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def available():
    """(ok, reason): whether a real-browser test can run here."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        return False, f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False, "playwright is not installed (pip install -r requirements-dev.txt)"
    return True, ""


@contextlib.contextmanager
def launch():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
