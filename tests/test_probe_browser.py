"""The "speed over the cycle" panel in a real headless Chromium against the real server."""
from datetime import date, datetime, timedelta, timezone

import pytest

import browser as browsermod
from conftest import need
from harness import wait_for

from datacap.measure.probe import file as probe_file
from datacap.usage import cycles


@pytest.fixture(scope="module")
def chromium():
    ok, reason = browsermod.available()
    need(ok, reason)
    with browsermod.launch() as b:
        yield b


def seed(data_dir, speeds, unsettled=()):
    """Probes an hour apart; those in `unsettled` stopped at their byte ceiling."""
    start = cycles.cycle_start(1, date.today()).isoformat()
    t0 = datetime.now(timezone.utc) - timedelta(hours=len(speeds))
    data_dir.mkdir(parents=True, exist_ok=True)
    for i, mbps in enumerate(speeds):
        settled = i not in unsettled
        probe_file.add(data_dir, {"id": f"p{i}", "time": (t0 + timedelta(hours=i)).isoformat(), "cycle_start": start,
                                  "cycle_used_bytes": i * 10 ** 9, "mbps": mbps, "bytes": 3 * 10 ** 6, "quiet": True,
                                  "stopped_by": "settled" if settled else "bytes", "settled": settled}, 50)


def test_probe_panel_shows_the_finding_the_budget_and_draws_both_views(server, chromium, tmp_path):
    seed(tmp_path / "s0" / "data", [90, 91, 90, 2, 2, 2, 1.7], unsettled={6})
    s = server(probe_interval_minutes=None, data_cap_gb=100)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(s.url + "/")
        finding = page.get_by_test_id("probe-finding")
        wait_for(lambda: finding.inner_text().startswith("Since ~2.50 GB into this cycle"), 10, "the finding shown")
        assert "probes show 2 Mbit/s; before, 90 Mbit/s" in finding.inner_text()
        assert page.locator("#probe-budget").inner_text() == "21.0 MB of 1.00 GB (2.1 %)"
        assert page.locator("#probe-count").inner_text() == "7"
        assert page.locator("#probe-last").inner_text().startswith("1.70 Mbit/s (did not settle: an estimate)")
        assert "Probe (did not settle)" in page.locator("#probe-chart .u-legend").inner_text()
        assert page.locator("#probe-next").inner_text().startswith("off")
        assert page.locator("#probe-chart canvas").count() == 1
        page.get_by_role("button", name="against date").click()
        wait_for(lambda: page.locator("#pv-date").get_attribute("aria-pressed") == "true", 3, "date view")
        assert page.locator("#probe-chart canvas").count() == 1
        assert errors == []
    finally:
        page.close()
