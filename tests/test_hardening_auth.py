"""Tokens that can't be guessed or leaked: weak tokens refused, guesses rate-limited, the cookie a signed session."""
import json
import subprocess
import sys
import time

import pytest
import requests

from conftest import ROOT
from datacap import config
from datacap.web import create_app, security

TOKEN = "Zq8-w3Rt_kP0vLx9sN2m"
LAN = {"Host": "192.168.1.5:8000", "Origin": "http://192.168.1.5:8000"}


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def lan(tmp_path, monkeypatch):
    """The token-protected app on a fake clock, counting every token comparison."""
    clock = Clock()
    app = create_app({"auth_token": TOKEN, "host": "0.0.0.0", "trusted_proxies": ["10.233.0.1"]},
                     tmp_path, tmp_path / "c.json")
    app.extensions["login_limiter"].clock = clock
    compared = []
    real = security.same_token
    monkeypatch.setattr(security, "same_token", lambda s, t: compared.append(s) or real(s, t))
    return app.test_client(), clock, compared


@pytest.mark.parametrize("weak", ["a" * 16, "abcabcabcabcabcabc", "hunter2", "0123456"])
def test_weak_tokens_are_a_config_error_that_says_how_to_make_one(weak):
    with pytest.raises(config.ConfigError) as err:
        config.validate({"auth_token": weak})
    assert "python server.py --new-token" in err.value.errors["auth_token"] and weak not in str(err.value)


def test_new_token_prints_a_strong_token_and_exits(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--new-token"], capture_output=True, text=True,
                       timeout=20, cwd=tmp_path)
    token = r.stdout.strip()
    assert r.returncode == 0 and len(token) >= 32 and r.stderr == ""
    assert config.validate({"auth_token": token, "host": "0.0.0.0"})["auth_token"] == token
    assert not (tmp_path / "data").exists()  # it started nothing


def test_server_with_a_weak_token_refuses_to_start_and_says_what_to_run(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auth_token": "a" * 16}))
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(cfg), "--data-dir",
                        str(tmp_path / "d"), "--no-browser"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--new-token" in r.stderr and "a" * 16 not in r.stderr


def test_500_wrong_tokens_reach_the_comparison_at_most_10_times_then_the_right_one_works(lan):
    client, clock, compared = lan
    answers = []
    for i in range(500):
        if i % 2:
            r = client.post("/login", data={"token": f"guess-{i:04d}-abcdefgh"}, headers=LAN)
        else:
            r = client.get("/api/stats", headers={**LAN, "Authorization": f"Bearer guess-{i:04d}-abcdefgh"})
        answers.append(r.status_code)
        clock.t += 0.05  # 20 guesses a second, 25 s in all
    assert len(compared) <= 10 and TOKEN not in compared
    assert answers.count(429) >= 490
    r = client.get("/api/stats", headers={**LAN, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 429 and "try again" in r.get_json()["error"]  # even the right one waits
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= security.MAX_LOCK_S
    clock.t += wait
    r = client.post("/login", data={"token": TOKEN}, headers=LAN)
    assert r.status_code == 303 and security.COOKIE in r.headers["Set-Cookie"]
    assert client.get("/api/stats", headers=LAN).status_code == 200  # the session cookie does it now


def test_the_lock_out_is_per_client(lan):
    client, clock, _ = lan
    for _ in range(20):
        client.get("/api/stats", headers={**LAN, "Authorization": "Bearer wrong-wrong-wrong-wrong"})
    assert client.get("/api/stats", headers={**LAN, "Authorization": "Bearer wrong-wrong-wrong-wrong"}).status_code == 429
    other = {**LAN, "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/stats", headers=other, environ_base={"REMOTE_ADDR": "192.168.1.9"}).status_code == 200
    # behind the trusted proxy each forwarded client counts for itself; X-Forwarded-For from others is ignored
    via = {"REMOTE_ADDR": "10.233.0.1"}
    assert client.get("/api/stats", headers={**other, "X-Forwarded-For": "192.168.1.20"}, environ_base=via).status_code == 200
    assert client.get("/api/stats", headers={**other, "X-Forwarded-For": "192.168.1.20"}).status_code == 429


def test_the_cookie_holds_a_signed_session_not_the_token(lan):
    client, clock, _ = lan
    r = client.post("/login", data={"token": TOKEN}, headers=LAN)
    cookie = r.headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert security.session_ok(value, TOKEN)
    assert not security.session_ok(value, TOKEN + "-changed")  # a new token signs everyone out
    sid, expires, sig = value.split(".")
    for forged in (f"{sid}x.{expires}.{sig}", f"{sid}.{int(expires) + 1}.{sig}", f"{sid}.{expires}.{'0' * 64}",
                   TOKEN, "", "a.b.c"):
        client.set_cookie(security.COOKIE, forged, domain="192.168.1.5")
        assert client.get("/api/stats", headers=LAN).status_code == 401, forged
    assert not security.session_ok(value, TOKEN, now=time.time() + security.SESSION_S + 60)  # expired


def test_cookie_is_secure_when_https_is_vouched_for_by_a_trusted_proxy_only(lan):
    client, _, _ = lan
    https = {**LAN, "Origin": "https://192.168.1.5:8000", "X-Forwarded-Proto": "https"}
    r = client.post("/login", data={"token": TOKEN}, headers=https, environ_base={"REMOTE_ADDR": "10.233.0.1"})
    assert r.status_code == 303 and "Secure" in r.headers["Set-Cookie"]
    r = client.post("/login", data={"token": TOKEN}, headers={**LAN, "X-Forwarded-Proto": "https"})
    assert r.status_code == 303 and "Secure" not in r.headers["Set-Cookie"]  # anyone can send the header


def test_trusted_proxies_is_validated_like_the_other_keys():
    for bad in ("10.0.0.1", ["proxy.lan"], [1]):
        with pytest.raises(config.ConfigError) as err:
            config.validate({"trusted_proxies": bad})
        assert list(err.value.errors) == ["trusted_proxies"]
    assert config.validate({"trusted_proxies": ["::1", "10.0.0.1"]})["trusted_proxies"] == ["::1", "10.0.0.1"]


def test_real_server_locks_out_a_guesser_on_real_sockets_and_lets_the_owner_in_after(server):
    s = server(auth_token=TOKEN, trusted_proxies=["127.0.0.1"])
    guesser = requests.Session()
    codes = [guesser.post(s.url + "/login", data={"token": f"guess-{i:04d}-abcdefgh"}, allow_redirects=False,
                          timeout=5).status_code for i in range(500)]
    assert codes[:security.FREE_FAILURES] == [303] * security.FREE_FAILURES and set(codes[security.FREE_FAILURES:]) == {429}
    assert s.log().count("auth: wrong token from 127.0.0.1") <= 10
    r = requests.get(s.url + "/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 429
    time.sleep(int(r.headers["Retry-After"]))
    owner = requests.Session()
    r = owner.post(s.url + "/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"},
                   allow_redirects=False, timeout=5)
    assert r.status_code == 303 and "Secure" in r.headers["Set-Cookie"]  # waitress passed the proxy's word on
    assert TOKEN not in r.headers["Set-Cookie"]
    owner.cookies.set(security.COOKIE, r.cookies[security.COOKIE])
    assert owner.get(s.url + "/api/stats", timeout=5).status_code == 200
