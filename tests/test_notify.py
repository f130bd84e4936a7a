"""Notifications through Apprise: a json:// receiver on loopback, real Apprise, the real server."""
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datacap import store as jsonstore
from datacap.notify import notifier as notifiermod
from datacap.notify.notifier import Notifier
from harness import wait_for


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
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass  # the client gave up waiting: what a stall test wants

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


def json_url(rx):
    return rx.url.replace("http://", "json://")


def test_apprise_json_gets_one_message_per_threshold_per_cycle_across_a_failure_and_a_restart(server, receiver):
    rx = receiver(fail_first=1)
    s = server(notify_urls=[json_url(rx)], data_cap_gb=1, alert_thresholds_percent=[50, 75])
    wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
    s.post("/api/usage/adjust", json={"used_gb": 0.6})
    wait_for(lambda: len(rx.bodies) == 1, 15, "the 50 % alert (after one failed attempt)")
    assert rx.fail_left == 0
    last = s.get("/api/system").json()["notify"]["last_error"]
    assert last["event"] == "cap_alert" and "500" in last["error"] and last["destination"].startswith("json://")
    s.post("/api/usage/adjust", json={"used_gb": 0.8})
    wait_for(lambda: len(rx.bodies) == 2, 15, "the 75 % alert")
    time.sleep(3)
    s.stop()
    s.start()  # same data folder: nothing is sent again
    time.sleep(5)
    assert [b["title"] for b in rx.bodies] == ["Data cap: 50% used", "Data cap: 75% used"]
    assert "50% of the data cap used" in rx.bodies[0]["message"] and rx.bodies[0]["type"] == "warning"


class StubViews:
    """The parts of Views the notifier reads, set by hand."""

    def __init__(self, cfg, stats=None, processes=None, usage=None, data_dir=None):
        self.cfg = {"notify_outage_minutes": 10, **cfg}
        self.data_dir = data_dir  # where files no stub stands in for (probes.json) are read
        self.stats_doc, self.processes, self.usage_doc = stats or {}, processes or {}, usage
        self.started = 1700000000.0
        self.usage = type("R", (), {"read": lambda _self: self.usage_doc})()
        self.downloader = type("R", (), {"read": lambda _self: self.stats_doc})()
        self.devices_doc = {}
        self.devices_live = type("R", (), {"read": lambda _self, interval: (self.devices_doc, not self.devices_doc)})()

    def system(self):
        return {"processes": self.processes}

    def summary(self):
        return {"start": "2026-11-01"}


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def settle(n, clock, rounds=3, now=None):
    """Scan and send a few times, stepping past any retry delay."""
    for _ in range(rounds):
        n.scan(now=now)
        n.send_due()
        clock.t += notifiermod.RETRY_MAX_S


EVENT = {"start": "2026-11-23T10:00:00+00:00", "at_gb": 12.3, "at_bytes": 12_300_000_000,
         "baseline_mbps": 94.0, "throttled_mbps": 9.8, "end": None}
OLD = dict(EVENT, start="2026-11-23T09:00:00+00:00", end="2026-11-23T09:10:00+00:00")


def test_throttle_start_and_lift_are_each_sent_once_across_a_failure_and_a_restart(tmp_path, receiver):
    rx = receiver(fail_first=1)
    views = StubViews({"notify_urls": [json_url(rx)]}, {"session_id": "s1", "throttle_events": [OLD]},
                      data_dir=tmp_path)
    clock = Clock()
    n = Notifier(views, tmp_path, clock=clock, host="pi")
    settle(n, clock)
    assert rx.bodies == []  # events from before the notifier existed are not news
    views.stats_doc = {"session_id": "s1", "throttle_events": [OLD, EVENT]}
    n.scan(); n.send_due()
    assert rx.bodies == [] and rx.fail_left == 0 and n.status()["pending"] == 1  # answered 500: kept
    settle(n, clock)
    assert [b["title"] for b in rx.bodies] == ["Throttled"]
    assert "throttled at 12.30 GB, 94.0 -> 9.8 Mbit/s" in rx.bodies[0]["message"]
    n = Notifier(views, tmp_path, clock=clock, host="pi")  # a restart
    settle(n, clock)
    assert len(rx.bodies) == 1
    views.stats_doc = {"session_id": "s1", "throttle_events": [OLD, dict(EVENT, end="2026-11-23T10:30:00+00:00")]}
    settle(n, clock)
    n = Notifier(views, tmp_path, clock=clock, host="pi")
    settle(n, clock)
    assert [(b["title"], b["type"]) for b in rx.bodies] == [("Throttled", "warning"), ("Throttle lifted", "info")]


def test_an_outage_is_news_only_once_it_is_longer_than_the_configured_minutes(tmp_path, receiver):
    rx = receiver()
    start = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    outage = {"kind": "outage", "start": start.isoformat(), "end": None, "at_bytes": 5, "duration_s": None}
    views = StubViews({"notify_urls": [json_url(rx)], "notify_outage_minutes": 5}, {"session_id": "s2"},
                      data_dir=tmp_path)
    clock = Clock()
    n = Notifier(views, tmp_path, clock=clock)
    settle(n, clock, now=start)
    views.stats_doc = {"session_id": "s2", "events": [outage]}
    settle(n, clock, now=start + timedelta(minutes=4))
    assert rx.bodies == []  # 4 minutes: not yet
    settle(n, clock, now=start + timedelta(minutes=6))
    assert [b["title"] for b in rx.bodies] == ["Internet outage"]
    views.stats_doc = {"session_id": "s2", "events": [dict(outage, end=(start + timedelta(minutes=12)).isoformat())]}
    settle(n, clock, now=start + timedelta(minutes=13))
    assert [b["title"] for b in rx.bodies] == ["Internet outage", "Internet back"]
    assert "after 12 min" in rx.bodies[1]["message"]
    short = {"kind": "outage", "start": start.isoformat(), "end": (start + timedelta(minutes=2)).isoformat()}
    views.stats_doc = {"session_id": "s3", "events": [short]}
    settle(n, clock, now=start + timedelta(minutes=30))
    assert len(rx.bodies) == 2  # a 2-minute outage is not worth a message


def test_a_child_gone_fatal_is_sent_once_per_failure(tmp_path, receiver):
    rx = receiver()
    fatal = {"state": "fatal", "restarts": 5, "last_error": "collector: cannot read /proc/net/dev",
             "exit": "exit code 1"}
    views = StubViews({"notify_urls": [json_url(rx)]}, processes={"collector": {"state": "running", "restarts": 0}},
                      data_dir=tmp_path)
    clock = Clock()
    n = Notifier(views, tmp_path, clock=clock)
    settle(n, clock)
    views.processes = {"collector": fatal}
    settle(n, clock)
    settle(n, clock)
    assert [b["title"] for b in rx.bodies] == ["datacap collector stopped"]
    assert "cannot read /proc/net/dev" in rx.bodies[0]["message"]


def test_one_failing_destination_never_repeats_a_message_to_the_others(tmp_path, receiver):
    good, bad = receiver(), receiver(fail_first=1000)
    views = StubViews({"notify_urls": [json_url(good), json_url(bad)]}, {"session_id": "s1"}, data_dir=tmp_path)
    clock = Clock()
    n = Notifier(views, tmp_path, clock=clock)
    settle(n, clock)
    views.stats_doc = {"session_id": "s1", "throttle_events": [EVENT]}
    settle(n, clock, rounds=5)
    assert len(good.bodies) == 1 and bad.bodies == [] and n.status()["pending"] == 1
    clock.t += notifiermod.GIVE_UP_S
    settle(n, clock)
    assert n.status()["pending"] == 0 and len(good.bodies) == 1  # gave up on the failing one, loudly
    sent = jsonstore.read_json(Path(tmp_path) / notifiermod.NAME)["sent"]
    assert sum(k.endswith(f"throttle-start:s1:{EVENT['start']}") for k in sent) == 2


def test_a_real_throttle_start_and_lift_reach_apprise_once_across_a_failure_and_a_restart(server, receiver, fake_isp):
    rx = receiver(fail_first=1)
    isp = fake_isp(rate_mbps=40, throttle_after_bytes=int(27 * 40e6 / 8), throttled_mbps=4)
    s = server(notify_urls=[json_url(rx)], test_urls=[isp.url()], streams=2, baseline_seconds=5)
    assert s.post("/api/start").ok
    wait_for(lambda: rx.bodies, 90, "the throttle start (after one failed attempt)")
    assert rx.fail_left == 0 and [b["title"] for b in rx.bodies] == ["Throttled"]
    isp.link.update(throttle_after_bytes=None)  # the ISP lifts it
    wait_for(lambda: len(rx.bodies) == 2, 90, "the lift")
    s.post("/api/stop")
    wait_for(lambda: s.stats()["status"] == "stopped", 10, "stopped")
    s.stop()
    s.start()  # same data folder, the session's events still in downloader.json: nothing again
    time.sleep(2 * notifiermod.SCAN_S + 2)
    assert [(b["title"], b["type"]) for b in rx.bodies] == [("Throttled", "warning"), ("Throttle lifted", "info")]
