"""The dashboard's layout in a real Chromium: the two answers first, the cap's banner, dated bars, the invitation."""
import json
import os
import stat
from datetime import date, timedelta

from harness import wait_for
from test_browser import chromium, page  # noqa: F401  (the real-browser fixtures)


def started_days_ago(days):
    """A billing day whose cycle began `days` ago (28 at most, so no month clamps it)."""
    return min((date.today() - timedelta(days=days)).day, 28)


def test_answers_come_first_and_system_and_interfaces_are_folded_below(server, page):  # noqa: F811
    s = server(data_cap_gb=10)
    page.goto(s.url + "/")
    answer = page.get_by_test_id("answer-cap")
    wait_for(lambda: "% used" in answer.inner_text(), 15, "the cap answer")
    assert "of 10.00 GB" in answer.inner_text() and "Monitoring since" in answer.inner_text()
    assert page.get_by_test_id("answer-test").inner_text().startswith("No test yet")
    order = page.evaluate("[...document.querySelectorAll('main > section')].map((x) => x.id || x.className)")
    assert order[0] == "wide answers" and order.index("live") < order.index("folded")
    assert page.evaluate("!document.getElementById('if-box').open && !document.getElementById('sys-box').open")
    assert page.locator("#if-rows").is_hidden() and page.locator("#sys").is_hidden()


def test_banner_near_and_at_the_cap_and_the_invitation_to_enter_the_meter_reading(server, page):  # noqa: F811
    s = server(data_cap_gb=10, billing_day=started_days_ago(3))
    page.goto(s.url + "/")
    invite = page.get_by_test_id("cap-invite")
    invite.wait_for(state="visible", timeout=15_000)
    assert "after this cycle began" in invite.inner_text()
    dates = page.locator("#cap-daily-dates span").all_inner_texts()
    assert len(dates) >= 2 and dates[0] != dates[-1]
    assert page.locator("#cap-budget-line").is_visible() and "a day, the even pace" in page.inner_text("#cap-daily-note")
    invite.get_by_role("button").click()
    field = page.get_by_label("ISP says used this cycle (GB)")
    assert field.is_visible() and page.evaluate("document.activeElement.name") == "used_gb"
    field.fill("9.5")
    page.get_by_role("button", name="Record").click()
    banner = page.get_by_test_id("cap-banner")
    banner.wait_for(state="visible", timeout=10_000)
    assert banner.inner_text().startswith("Near the cap: 95.0% used")
    assert invite.is_hidden()
    assert s.post("/api/usage/adjust", json={"used_gb": 10.5}).status_code in (200, 201)
    page.reload()
    wait_for(lambda: banner.inner_text().startswith("Data cap reached: 10.50 GB of 10.00 GB"), 15, "the cap banner")
    assert page.console_errors == []


def test_settings_errors_are_shown_at_their_fields_naming_every_bad_url_and_a_save_keeps_the_file_readable(
        server, page):  # noqa: F811
    s = server()
    before = s.config_path.read_text()
    os.chmod(s.config_path, 0o640)
    page.goto(s.url + "/")
    page.locator("#settings summary").click()
    urls = page.get_by_label("Test URLs (one per line)")
    wait_for(lambda: urls.input_value().startswith("http"), 5, "the form filled")
    urls.fill("ftp://files.example/a\nhttp://ok.example/b\nnot-a-url")
    page.get_by_role("button", name="Save settings").click()
    note = page.locator("#err-test_urls")
    note.wait_for(timeout=5000)
    assert "'ftp://files.example/a'" in note.inner_text() and "'not-a-url'" in note.inner_text()
    assert urls.get_attribute("aria-invalid") == "true"
    urls.fill("http://ok.example/b")
    page.get_by_role("button", name="Save settings").click()
    wait_for(lambda: "Saved and applied" in page.inner_text("#config-msg"), 5, "saved")
    assert note.count() == 0 and urls.get_attribute("aria-invalid") is None
    assert s.get("/api/config").json()["test_urls"] == ["http://ok.example/b"]
    after = s.config_path.read_text()  # still indented as it was, keys in their order, its mode kept
    assert after.startswith('{\n  "test_urls": [\n    "http://ok.example/b"\n  ],\n') and after.endswith("}\n")
    assert list(json.loads(after))[:len(json.loads(before))] == list(json.loads(before))
    assert stat.S_IMODE(os.stat(s.config_path).st_mode) == 0o640
