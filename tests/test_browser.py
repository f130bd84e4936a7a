"""The dashboard in a real headless Chromium against the real server and a fake ISP."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import browser as browsermod
from conftest import need
from harness import wait_for


@pytest.fixture(scope="module")
def chromium():
    ok, reason = browsermod.available()
    need(ok, reason)
    with browsermod.launch() as b:
        yield b


@pytest.fixture
def page(chromium):
    ctx = chromium.new_context(viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    p.console_errors, p.requests = [], []
    p.on("console", lambda m: m.type == "error" and p.console_errors.append(m.text))
    p.on("pageerror", lambda e: p.console_errors.append(str(e)))
    p.on("request", lambda r: p.requests.append(r.url))
    yield p
    ctx.close()


def status(page):
    return page.get_by_test_id("status").inner_text()


def test_click_path_start_pause_resume_stop(server, fake_isp, page):
    isp = fake_isp(rate_mbps=200)
    s = server(test_urls=[isp.url()])
    page.goto(s.url + "/")
    start = page.get_by_role("button", name="Start", exact=True)
    pause = page.get_by_role("button", name="Pause", exact=True)
    resume = page.get_by_role("button", name="Resume", exact=True)
    stop = page.get_by_role("button", name="Stop", exact=True)
    wait_for(lambda: start.is_enabled(), 5, "Start enabled")
    assert pause.is_disabled() and resume.is_disabled() and stop.is_disabled()
    start.click()
    wait_for(lambda: status(page) == "running" and pause.is_enabled(), 5, "running")
    wait_for(lambda: float(page.locator("#speed").inner_text()) > 0, 6, "speed shown")
    pause.click()
    wait_for(lambda: status(page) == "paused" and resume.is_enabled(), 5, "paused")
    assert pause.is_disabled() and start.is_disabled()
    resume.click()
    wait_for(lambda: status(page) == "running", 5, "running again")
    stop.click()
    wait_for(lambda: status(page) == "stopped" and start.is_enabled(), 8, "stopped")
    assert page.console_errors == []
    assert all(u.startswith(s.url) for u in page.requests), [u for u in page.requests if not u.startswith(s.url)]


def test_throttle_banner_appears_when_the_isp_drops_the_rate(server, fake_isp, page):
    isp = fake_isp(rate_mbps=80, throttle_after_bytes=110_000_000, throttled_mbps=16)
    s = server(test_urls=[isp.url()], baseline_seconds=4)
    page.goto(s.url + "/")
    page.get_by_role("button", name="Start", exact=True).click()
    banner = page.locator("#throttle")
    banner.wait_for(state="visible", timeout=40_000)
    text = banner.inner_text()
    assert text.startswith("Throttled at 0.1") and "→" in text and "Mbit/s since" in text
    assert page.console_errors == []


def test_chart_gets_every_new_point_through_uplot_and_idles_quietly(server, fake_isp, page):
    isp = fake_isp(rate_mbps=40)
    s = server(test_urls=[isp.url()], baseline_seconds=3)
    page.goto(s.url + "/")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_for(lambda: page.evaluate("stats.baseline_speed != null && n >= 6"), 15, "baseline and points on the chart")
    page.evaluate("window.draws = 0; chart.hooks.draw.push(() => draws++)")
    n0 = page.evaluate("n")
    time.sleep(4)
    n1, drawn_points, draws = page.evaluate("[n, chart.data[1].length, draws]")
    assert n1 - n0 >= 3 and drawn_points == n1 and draws >= 3  # uPlot itself drew each poll's points
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: status(page) == "stopped", 8, "stopped")
    time.sleep(1.5)
    page.evaluate("draws = 0")
    time.sleep(3)
    assert page.evaluate("draws") == 0  # still polling, nothing new: nothing drawn
    assert page.console_errors == []


def test_reset_asks_for_confirmation(server, tmp_path, page):
    s = server()
    from datacap import store as jsonstore
    jsonstore.write_json_atomic(s.data_dir / "downloader.json", {"status": "finished", "total_bytes": 5 * 10**9,
                                                                "total_gb": 5.0, "data_points": []})
    page.goto(s.url + "/")
    reset = page.get_by_role("button", name="Reset", exact=True)
    wait_for(lambda: status(page) == "finished" and reset.is_enabled(), 5, "finished")
    page.once("dialog", lambda d: d.dismiss())
    reset.click()
    time.sleep(0.5)
    assert status(page) == "finished"
    page.once("dialog", lambda d: d.accept())
    reset.click()
    wait_for(lambda: status(page) == "idle", 5, "idle after reset")


def test_first_data_painted_within_1_second(server, page):
    s = server()
    page.goto(s.url + "/")
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'", timeout=5000)
    painted_ms = page.evaluate("performance.now()")
    assert painted_ms < 1000, painted_ms


@pytest.mark.parametrize("width", [360, 390])
def test_phone_viewport_has_no_horizontal_overflow(server, chromium, width):
    s = server()
    ctx = chromium.new_context(viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True)
    p = ctx.new_page()
    p.goto(s.url + "/")
    p.wait_for_function("() => document.getElementById('conn').textContent === 'live'", timeout=5000)
    p.locator("#settings summary").click()
    overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    ctx.close()
    assert overflow <= 0


def test_dashboard_says_so_when_the_server_stops_answering(server, page):
    s = server()
    page.goto(s.url + "/")
    page.wait_for_function("() => document.getElementById('conn').textContent === 'live'", timeout=5000)
    s.stop()
    page.locator("#offline").wait_for(state="visible", timeout=8000)
    assert "not answering" in page.locator("#offline").inner_text()
    assert page.get_by_role("button", name="Start", exact=True).is_disabled()


HOSTILE_PAGE = b"""<!doctype html><html><body>
<iframe id=dash src="http://127.0.0.1:%d/" style="position:absolute;left:0;top:0;width:1280px;height:800px;border:0"></iframe>
<form id=f method=POST action="http://127.0.0.1:%d/api/start" enctype="text/plain">
<input name='{"a":"' value='"}'></form>
<script>
fetch("http://127.0.0.1:%d/api/start", {method: "POST", mode: "no-cors", body: "{}"}).catch(() => {});
fetch("http://127.0.0.1:%d/api/start", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"}).catch(() => {});
setTimeout(() => document.getElementById("f").submit(), 2500);
</script></body></html>"""


def test_hostile_page_on_another_port_cannot_start_a_test(server, page, chromium):
    s = server()
    direct = chromium.new_page(viewport={"width": 1280, "height": 800})
    direct.goto(s.url + "/")
    box = direct.get_by_role("button", name="Start", exact=True).bounding_box()  # where a framed Start would be
    headers = {k.lower(): v for k, v in direct.request.get(s.url + "/").headers.items()}
    direct.close()
    assert "frame-ancestors 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):
            body = HOSTILE_PAGE % (s.port, s.port, s.port, s.port)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://localhost:{evil.server_address[1]}/")
        framed = page.frame_locator("#dash")
        time.sleep(1.5)
        assert framed.locator("[data-action=start]").count() == 0  # the frame is blocked: no dashboard in it
        assert any("frame-ancestors" in e or "X-Frame-Options" in e for e in page.console_errors), page.console_errors
        for _ in range(3):  # a user clicking where the framed Start button would be
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        time.sleep(2.5)
    finally:
        evil.shutdown()
    assert s.stats()["status"] == "idle"
    assert "downloader" not in s.children()
    assert "downloader: stopped -> starting" not in s.log()


def test_settings_panel_saves_and_applies_and_shows_field_errors(server, page):
    s = server(data_cap_gb=100)
    page.goto(s.url + "/")
    page.locator("#settings summary").click()
    cap = page.get_by_label("Data cap (GB)")
    wait_for(lambda: cap.input_value() == "100", 5, "the form filled from /api/config")
    cap.fill("250")
    page.get_by_role("button", name="Save settings").click()
    wait_for(lambda: "Saved and applied" in page.locator("#config-msg").inner_text(), 5, "saved")
    assert s.get("/api/config").json()["data_cap_gb"] == 250
    wait_for(lambda: "of 250.0 GB" in page.locator("#cap-used").inner_text(), 12, "the cap panel to follow")
    page.get_by_label("Alert thresholds (% list)").fill("50, 150")
    page.get_by_role("button", name="Save settings").click()
    wait_for(lambda: "alert_thresholds_percent" in page.locator("#config-msg").inner_text(), 5, "the field error")
    assert s.get("/api/config").json()["alert_thresholds_percent"] == [50, 75, 90, 100]
    assert page.console_errors == [] or all("400" in e for e in page.console_errors)
