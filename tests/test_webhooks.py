"""Webhook alerts against a local receiver; external IP lookup against a local fake."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datacap import store as jsonstore
from harness import wait_for
from datacap.notify.webhooks import Notifier


class Receiver:
    """A local webhook receiver (and lookup service): records POST bodies, can fail or stall."""

    def __init__(self, fail_first=0, get_body=None, get_delay=0.0):
        self.bodies, self.fail_left = [], fail_first
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = 500 if outer.fail_left > 0 else 204
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                else:
                    outer.bodies.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                time.sleep(get_delay)
                data = json.dumps(get_body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]
    yield make
    for r in made:
        r.close()


def test_exactly_one_message_per_threshold_per_cycle_across_retries_and_restarts(server, receiver):
    rx = receiver(fail_first=1)
    s = server(webhook_url=rx.url, data_cap_gb=1, alert_thresholds_percent=[50, 75])
    wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
    s.post("/api/usage/adjust", json={"used_gb": 0.6})
    wait_for(lambda: len(rx.bodies) == 1, 15, "the 50 % alert (after one failed attempt)")
    s.post("/api/usage/adjust", json={"used_gb": 0.8})
    wait_for(lambda: len(rx.bodies) == 2, 15, "the 75 % alert")
    time.sleep(3)
    s.stop()
    s.start()  # same data folder: nothing is sent again
    time.sleep(5)
    assert [b["data"]["percent"] for b in rx.bodies] == [50, 75]
    assert all(b["event"] == "cap_alert" and b["text"] == b["content"] for b in rx.bodies)
    assert "50% of the data cap used" in rx.bodies[0]["text"]


class StubViews:
    def __init__(self, stats):
        self.cfg = {"webhook_url": "http://hook.invalid/"}
        self.stats = stats
        self.downloader = type("R", (), {"read": lambda _self: self.stats})()
        self.usage = type("R", (), {"read": lambda _self: None})()

    def summary(self):
        return {"start": "2026-11-01"}


def test_throttle_start_and_end_are_each_sent_once(tmp_path):
    sent = []
    ok = type("Resp", (), {"status_code": 200})()
    event = {"start": "2026-11-23T10:00:00+00:00", "at_gb": 12.3, "at_bytes": 12_300_000_000,
             "baseline_mbps": 94.0, "throttled_mbps": 9.8, "end": None}
    old = dict(event, start="2026-11-23T09:00:00+00:00", end="2026-11-23T09:10:00+00:00")
    views = StubViews({"session_id": "s1", "throttle_events": [old]})
    n = Notifier(views, tmp_path, post=lambda url, json, timeout: sent.append(json) or ok)
    n.scan(); n.send_due()
    assert sent == []  # events from before the notifier existed are not news
    views.stats = {"session_id": "s1", "throttle_events": [old, event]}
    for _ in range(3):
        n.scan(); n.send_due()
    assert [m["event"] for m in sent] == ["throttle_start"]
    assert "throttled at 12.30 GB, 94.0 -> 9.8 Mbit/s" in sent[0]["text"]
    views.stats = {"session_id": "s1", "throttle_events": [old, dict(event, end="2026-11-23T10:30:00+00:00")]}
    for _ in range(3):
        n.scan(); n.send_due()
    assert [m["event"] for m in sent] == ["throttle_start", "throttle_end"]
    assert jsonstore.read_json(Path(tmp_path) / "webhooks.json")["sent"][-1].startswith("throttle-end:s1:")


def test_external_ip_is_shown_when_enabled(server, receiver):
    svc = receiver(get_body={"ip": "203.0.113.7", "org": "AS64500 Example Rural ISP"})
    s = server(external_ip_url=svc.url)
    ext = wait_for(lambda: s.get("/api/system").json()["external_ip"], 8, "external IP looked up")
    assert ext["ip"] == "203.0.113.7" and ext["isp"] == "AS64500 Example Rural ISP"


def test_a_stalled_lookup_never_slows_the_api(server, receiver):
    svc = receiver(get_body={"ip": "203.0.113.9"}, get_delay=10)
    s = server(external_ip_url=svc.url)
    time.sleep(0.5)
    t0 = time.monotonic()
    assert s.get("/api/stats").ok and s.get("/api/system").ok
    assert time.monotonic() - t0 < 1.0
    ext = wait_for(lambda: s.get("/api/system").json()["external_ip"], 8, "the 3-s timeout to be recorded")
    assert ext["ip"] is None and "timed out" in ext["error"].lower()


def test_external_ip_is_off_by_default(server):
    s = server()
    assert s.get("/api/system").json()["external_ip"] is None
