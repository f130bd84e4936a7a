"""The speed chart in a real Chromium: a pause is a gap in the line, not a slope across it."""
import time

from harness import wait_for
from test_browser import chromium, page, status  # noqa: F401  (the real-browser fixtures)

GAPS = "chart.series[1].gaps(chart, 1, 0, n - 1, []).filter(([a, b]) => b - a > 5).length"


def test_a_pause_is_a_gap_in_the_speed_line(server, fake_isp, page):  # noqa: F811
    isp = fake_isp(rate_mbps=40)
    s = server(test_urls=[isp.url()])
    page.goto(s.url + "/")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for(lambda: page.evaluate("n") >= 4, 15, "a few points")
    assert page.evaluate(GAPS) == 0
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_for(lambda: status(page) == "paused", 5, "paused")
    time.sleep(4)
    page.get_by_role("button", name="Resume", exact=True).click()
    n0 = page.evaluate("n")
    wait_for(lambda: page.evaluate("n") >= n0 + 3, 15, "points after the pause")
    assert page.evaluate(GAPS) == 1
    assert page.console_errors == []
