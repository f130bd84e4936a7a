"""Signing in through the real form in a real Chromium, under the strict Content-Security-Policy."""
import pytest

import browser as browsermod
from conftest import need
from datacap.web import security

TOKEN = "Zq8-w3Rt_kP0vLx9sN2m"


@pytest.fixture
def page():
    ok, reason = browsermod.available()
    need(ok, reason)
    with browsermod.launch() as b:
        ctx = b.new_context(viewport={"width": 1280, "height": 800})
        p = ctx.new_page()
        p.console_errors = []
        p.on("console", lambda m: m.type == "error" and p.console_errors.append(m.text))
        p.on("pageerror", lambda e: p.console_errors.append(str(e)))
        yield p
        ctx.close()


def test_sign_in_form_leads_to_a_live_dashboard_with_a_session_cookie_and_no_csp_complaints(server, page):
    s = server(auth_token=TOKEN)
    page.goto(s.url + "/")
    assert page.title() == "datacap: sign in"
    assert page.evaluate("getComputedStyle(document.querySelector('form')).display") == "grid"  # login.css applied
    page.get_by_label("Access token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.getElementById('conn')?.textContent === 'live'",
                           timeout=8000)
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"  # dashboard.css
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies[security.COOKIE]["httpOnly"] and TOKEN not in cookies[security.COOKIE]["value"]
    assert page.console_errors == []


def test_a_wrong_token_in_the_form_shows_the_form_again(server, page):
    s = server(auth_token=TOKEN)
    page.goto(s.url + "/")
    page.get_by_label("Access token").fill("not-the-token-at-all")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.title() == "datacap: sign in" and page.context.cookies() == []
