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
