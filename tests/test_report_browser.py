"""The evidence report in a real Chromium: it opens from History, prints to PDF with the verdict and the events."""
import io
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest

from datacap.measure import history
from harness import wait_for
from test_browser import chromium, page  # noqa: F401  (the real-browser fixtures)

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


def iso(s):
    return (T0 + timedelta(seconds=s)).isoformat(timespec="milliseconds")


def throttled_test(test_id="a1b2c3d4e5f6"):
    """A kept test: 80 Mbit/s for 60 s, an outage of 10 s, then 16 Mbit/s from 0.6 GB on."""
    points, total = [], 0
    for s in range(1, 150):
        mbps = 0.0 if 70 <= s < 80 else 80.0 if s < 60 else 16.0
        total += int(mbps * 125_000)
        points.append({"t": s, "time": iso(s), "mbps": mbps, "bytes": total})
    at = points[58]["bytes"]
    events = [
        {"kind": "throttle", "start": iso(59.4), "end": None, "at_bytes": at, "at_gb": round(at / 1e9, 4),
         "at_cycle_gb": 12.3456, "baseline_mbps": 80.0, "throttled_mbps": 16.0, "detected_at": iso(72),
         "end_at_bytes": None},
        {"kind": "outage", "start": iso(70), "end": iso(80), "at_bytes": points[69]["bytes"], "duration_s": 10.0},
    ]
    snap = {"session_id": test_id, "status": "stopped", "reason": "stopped by user", "session_start": iso(0),
            "session_duration": 149.0, "total_bytes": total, "total_gb": round(total / 1e9, 4), "streams": 4,
            "urls": ["http://isp.test/file"], "baseline_speed": 80.0, "avg_speed": 40.0, "peak_speed": 81.2,
            "threshold_percent": 40, "events": events, "history": points[::10], "data_points": points[-60:],
            "url_errors": []}
    return history.record(snap, iso(150), 11.75, 12.9)


def test_report_opens_from_history_and_prints_a_pdf_with_the_verdict_and_events(server, page):  # noqa: F811
    pypdf = pytest.importorskip("pypdf")
    s = server()
    t = throttled_test()
    history.append(s.data_dir, t)
    page.goto(s.url + "/")
    item = page.locator(f"#history-list li[data-id='{t['id']}']")
    item.wait_for(timeout=5000)
    assert item.locator(".verdict").inner_text() == t["verdict"]
    item.get_by_role("link", name="Report").click()
    page.wait_for_selector("#report[aria-busy=false]", timeout=5000)
    assert page.get_by_test_id("verdict").inner_text() == t["verdict"]
    assert page.locator("#chart-time canvas").count() == 1 and page.locator("#chart-gb canvas").count() == 1
    pdf = pypdf.PdfReader(io.BytesIO(page.pdf(format="A4")))
    text = " ".join(p.extract_text() for p in pdf.pages)
    flat = " ".join(unicodedata.normalize("NFKC", text).split())  # "ﬁ" ligatures back to letters
    assert "Throttled after 0.59 GB" in flat and "80.0 → 16.0 Mbit/s" in flat, flat[:400]
    assert "throttle" in flat and "outage" in flat and "no data for 10 s" in flat
    assert "12.35 GB" in flat  # the cycle's GB at the onset
    assert "how datacap measured" in flat.lower() and "http://isp.test/file" in flat
    assert page.console_errors == [], page.console_errors  # CSP-clean: no inline script or style


def test_report_of_an_unknown_test_is_a_404(server):
    s = server()
    r = s.get("/report/nope")
    assert r.status_code == 404 and "no kept test" in r.json()["error"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_report_fits_a_360_px_phone(server, chromium, scheme):  # noqa: F811
    s = server()
    history.append(s.data_dir, throttled_test())
    ctx = chromium.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True,
                               color_scheme=scheme)
    p = ctx.new_page()
    p.goto(s.url + "/report/a1b2c3d4e5f6")
    p.wait_for_selector("#report[aria-busy=false]", timeout=5000)
    wait_for(lambda: p.locator("canvas").count() == 2, 3, "two charts")
    overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    ctx.close()
    assert overflow <= 0


def two_step_test(test_id="5e0f1d2c3b4a"):
    """A kept test: 80 Mbit/s, then 20 from 40 s, then 4 from 85 s (two throttle tiers, two events)."""
    points, total = [], 0
    for s in range(1, 130):
        mbps = 80.0 if s < 40 else 20.0 if s < 85 else 4.0
        total += int(mbps * 125_000)
        points.append({"t": s, "time": iso(s), "mbps": mbps, "bytes": total})
    first, second = points[38]["bytes"], points[83]["bytes"]
    events = [
        {"kind": "throttle", "start": iso(39.5), "end": iso(84.5), "at_bytes": first, "at_gb": round(first / 1e9, 4),
         "baseline_mbps": 80.0, "throttled_mbps": 20.0, "detected_at": iso(52), "end_at_bytes": second},
        {"kind": "throttle", "start": iso(84.5), "end": None, "at_bytes": second, "at_gb": round(second / 1e9, 4),
         "baseline_mbps": 20.0, "throttled_mbps": 4.0, "detected_at": iso(97), "end_at_bytes": None, "step": 2},
    ]
    snap = {"session_id": test_id, "status": "stopped", "reason": "stopped by user", "session_start": iso(0),
            "session_duration": 129.0, "total_bytes": total, "total_gb": round(total / 1e9, 4), "streams": 4,
            "urls": ["http://isp.test/file"], "baseline_speed": 80.0, "avg_speed": 30.0, "peak_speed": 80.5,
            "threshold_percent": 50, "events": events, "history": points[::10], "data_points": points[-60:],
            "url_errors": []}
    return history.record(snap, iso(130))


def test_report_draws_each_step_of_a_throttle_in_tiers_and_names_them(server, page):  # noqa: F811
    s = server()
    t = two_step_test()
    assert t["verdict"] == ("Throttled after 0.39 GB of this test: 80.0 → 20.0 Mbit/s (75 % slower), then after "
                            "0.50 GB: 20.0 → 4.0 Mbit/s; still slow when the test ended.")
    history.append(s.data_dir, t)
    page.goto(s.url + f"/report/{t['id']}")
    page.wait_for_selector("#report[aria-busy=false]", timeout=5000)
    assert page.locator("#steps").inner_text() == ("Throttle steps: 80.0 Mbit/s → 20.0 Mbit/s from 0.390 GB; "
                                                   "20.0 Mbit/s → 4.0 Mbit/s from 0.502 GB.")
    assert "step 2: 20.0 Mbit/s → 4.0 Mbit/s" in page.locator("#events").inner_text()
    for box in ("#chart-time", "#chart-gb"):  # the level line of each step, in uPlot's legend and on the canvas
        assert "Throttled level" in page.locator(f"{box} .u-legend").inner_text()
    assert page.console_errors == [], page.console_errors

