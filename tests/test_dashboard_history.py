"""The dashboard in a real Chromium: History keeps every test, Reset keeps History, errors in words."""
import pytest

from harness import free_port, wait_for
from test_browser import chromium, page, status  # noqa: F401  (the real-browser fixtures)


def history_items(page):  # noqa: F811
    return page.locator("#history-list li")


def test_two_tests_both_in_history_with_verdicts_and_reset_keeps_them(server, fake_isp, page):  # noqa: F811
    isp = fake_isp(rate_mbps=80, throttle_after_bytes=110_000_000, throttled_mbps=16)
    s = server(test_urls=[isp.url()], baseline_seconds=4)
    page.goto(s.url + "/")
    start = page.get_by_role("button", name="Start", exact=True)
    stop = page.get_by_role("button", name="Stop", exact=True)
    start.click()
    page.locator("#throttle").wait_for(state="visible", timeout=45_000)
    stop.click()
    wait_for(lambda: history_items(page).count() == 1, 10, "the first test in History")
    isp.link.update(throttle_after_bytes=None)
    start.click()
    wait_for(lambda: status(page) == "running", 10, "the second test running")
    wait_for(lambda: float(page.locator("#speed").inner_text()) > 0, 10, "speed shown")
    stop.click()
    wait_for(lambda: history_items(page).count() == 2, 10, "both tests in History")
    verdicts = history_items(page).locator(".verdict").all_inner_texts()
    assert verdicts[0].startswith("No throttling in") and verdicts[1].startswith("Throttled after 0.1"), verdicts
    assert "→" in verdicts[1]
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Reset", exact=True).click()
    wait_for(lambda: status(page) == "idle", 5, "idle after reset")
    assert "stays in History" in page.locator("#feedback").inner_text()
    page.reload()
    wait_for(lambda: history_items(page).count() == 2, 5, "History after Reset and a reload")
    assert history_items(page).locator(".verdict").all_inner_texts() == verdicts
    assert page.console_errors == []


def test_no_internet_shows_connecting_and_each_url_in_words(server, page):  # noqa: F811
    urls = ["https://nonexistent.invalid/100MB.bin", f"http://127.0.0.1:{free_port()}/file"]
    s = server(test_urls=urls)
    page.goto(s.url + "/")
    page.get_by_role("button", name="Start", exact=True).click()
    problem = page.get_by_test_id("problem")
    problem.wait_for(state="visible", timeout=15_000)
    assert problem.inner_text() == "No test server reachable — is the internet down?"
    assert status(page) == "connecting"
    errs = page.get_by_test_id("url-errors").locator("li").all_inner_texts()
    assert any(e.startswith(urls[0] + ": DNS lookup failed: nonexistent.invalid not found") for e in errs), errs
    assert any(e.startswith(urls[1] + ": connection refused") for e in errs), errs
    body = page.locator("body").inner_text()
    for raw in ("HTTPSConnectionPool", "NameResolutionError", "Errno", "urlopen error"):
        assert raw not in body
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: history_items(page).count() == 1, 10, "the failed test in History")
    assert history_items(page).locator(".verdict").inner_text() == "No test server reachable — is the internet down?"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dashboard_with_history_and_errors_fits_a_360_px_phone(server, chromium, scheme):  # noqa: F811
    from test_report_browser import throttled_test
    from datacap.measure import history
    s = server(test_urls=["http://nonexistent.invalid/a-rather-long-path/to/a/test/file/100MB.bin"])
    history.append(s.data_dir, throttled_test())
    ctx = chromium.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True,
                               color_scheme=scheme)
    p = ctx.new_page()
    p.goto(s.url + "/")
    p.locator("#history-list li").first.wait_for(timeout=5000)
    p.get_by_role("button", name="Start", exact=True).click()
    p.get_by_test_id("url-errors").wait_for(state="visible", timeout=15_000)
    p.locator("#settings summary").click()
    overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    ctx.close()
    assert overflow <= 0
