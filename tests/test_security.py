"""No hostile page can press Start: CSRF, fetch metadata, Origin null, DNS rebinding, LAN auth."""
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from datacap.web import create_app
from datacap.supervise.supervisor import Supervisor
from test_supervisor import World

HOSTILE = [
    ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, "cross-origin text/plain"),
    ({"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}, "cross-origin form"),
    ({"Origin": "http://evil.example", "Content-Type": "application/json"}, "cross-origin JSON"),
    ({"Origin": "null"}, "Origin null (sandboxed iframe, file://)"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross-site fetch metadata"),
    ({"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9999"}, "same-site other port"),
    ({"Host": "attacker.example:8000"}, "DNS rebinding Host"),
]


@pytest.fixture
def app_world(tmp_path):
    world = World()
    sup = Supervisor(tmp_path / "c.json", tmp_path, clock=world.clock, popen=world.popen)
    app = create_app({}, tmp_path, tmp_path / "c.json", sup)
    return app.test_client(), world


@pytest.mark.parametrize("headers, what", HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_requests_are_refused_and_start_nothing(app_world, headers, what):
    client, world = app_world
    headers = {"Host": "127.0.0.1:8000", **headers}
    r = client.post("/api/start", headers=headers, data="{}")
    assert r.status_code == 403, what
    assert "error" in r.get_json()
    assert world.procs == []


def test_same_origin_dashboard_and_plain_curl_work(app_world):
    client, world = app_world
    r = client.post("/api/start", headers={"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000",
                                           "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    r = client.post("/api/stop", headers={"Host": "localhost:8000"})  # curl sends neither Origin nor Sec-Fetch-*
    assert r.status_code == 200


def test_rebinding_host_is_refused_even_for_reads(app_world):
    client, _ = app_world
    assert client.get("/api/stats", headers={"Host": "evil.example"}).status_code == 403
    assert client.get("/api/stats", headers={"Host": "[::1]:8000"}).status_code == 200


def test_token_mode_needs_the_token_everywhere_but_healthz(tmp_path):
    token = "correct-horse-battery-staple"
    app = create_app({"auth_token": token, "host": "0.0.0.0"}, tmp_path, tmp_path / "c.json")
    c = app.test_client()
    h = {"Host": "192.168.1.5:8000"}
    assert c.get("/api/stats", headers=h).status_code == 401
    assert c.get("/api/stats", headers={**h, "Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert c.get("/api/stats", headers={**h, "Authorization": f"Bearer {token}"}).status_code == 200
    assert c.get("/healthz", headers=h).status_code in (200, 503)
    assert b"Access token" in c.get("/", headers=h).data  # the login form, not the dashboard
    r = c.post("/login", data={"token": token}, headers={**h, "Origin": "http://192.168.1.5:8000"})
    assert r.status_code == 303 and "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
    assert c.get("/api/stats", headers=h).status_code == 200  # the cookie now does it


def test_lan_bind_without_token_refuses_to_start(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"host": "0.0.0.0"}))
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
                        "--no-browser"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "auth_token" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text("{}")
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
                        "--host", "0.0.0.0", "--no-browser"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "auth_token" in r.stderr  # the command-line override too


def test_settings_cannot_open_the_server_to_the_network_without_a_token(app_world):
    client, _ = app_world
    r = client.put("/api/config", json={"host": "0.0.0.0"}, headers={"Host": "127.0.0.1:8000"})
    assert r.status_code == 400 and "auth_token" in r.get_json()["fields"]["host"]


def test_pages_carry_a_strict_csp_and_no_frame_json_carries_nosniff(app_world, tmp_path):
    client, _ = app_world
    h = {"Host": "127.0.0.1:8000"}
    page = client.get("/", headers=h)
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    api = client.get("/api/stats", headers=h)
    assert api.is_json and api.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/nope", headers=h).headers["X-Content-Type-Options"] == "nosniff"  # errors too
    login = create_app({"auth_token": "Zq8-w3Rt_kP0vLx9sN2m"}, tmp_path, tmp_path / "c.json").test_client().get("/", headers=h)
    assert b"Access token" in login.data and "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]


def test_no_page_needs_inline_script_or_style():
    for page in (ROOT / "dashboard.html", ROOT / "static" / "login.html"):
        html = page.read_text()
        assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html), page
        assert all(tag.startswith(" src=") for tag in html.split("<script")[1:]), page  # scripts come from files
