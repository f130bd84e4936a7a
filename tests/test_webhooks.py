"""Webhook alerts against a local receiver; external IP lookup against a local fake."""
import time

from datacap import store as jsonstore
from harness import wait_for
from datacap.notify import destinations
from datacap.notify.notifier import Notifier
from test_notify import StubViews, receiver  # noqa: F401 (receiver: a fixture)


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


def test_throttle_start_and_end_keep_the_webhook_payload_and_the_keys_of_webhooks_json(tmp_path):
    sent = []
    ok = type("Resp", (), {"status_code": 200})()
    post = (lambda url, json, timeout: sent.append(json) or ok)
    event = {"start": "2026-11-23T10:00:00+00:00", "at_gb": 12.3, "at_bytes": 12_300_000_000,
             "baseline_mbps": 94.0, "throttled_mbps": 9.8, "end": None}
    old = dict(event, start="2026-11-23T09:00:00+00:00", end="2026-11-23T09:10:00+00:00")
    alert = {"cycle_start": "2026-11-01", "percent": 50, "used_bytes": 500_000_000, "cap_bytes": 10 ** 9}
    # an install from before Apprise: webhooks.json says the 50 % alert went out already
    jsonstore.write_json_atomic(tmp_path / "webhooks.json", {"sent": ["alert:2026-11-01:50"]})
    views = StubViews({"webhook_url": "http://hook.invalid/"}, {"session_id": "s1", "throttle_events": [old, event]},
                      usage={"alerts": [alert]}, data_dir=tmp_path)
    n = Notifier(views, tmp_path, make_destinations=lambda cfg: destinations.from_config(cfg, "pi", post))
    for _ in range(3):
        n.scan(); n.send_due()
    assert sent == []  # the alert was sent before the upgrade; the throttle events are from before we looked
    views.stats_doc = {"session_id": "s1", "throttle_events": [old, dict(event, end="2026-11-23T10:30:00+00:00")]}
    for _ in range(3):
        n.scan(); n.send_due()
    assert [m["event"] for m in sent] == ["throttle_end"]
    m = sent[0]
    assert m["text"] == m["content"] and m["host"] == "pi" and m["data"]["throttled_mbps"] == 9.8
    assert "speed recovered at 2026-11-23T10:30:00+00:00" in m["text"] and m["time"].endswith("+00:00")


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
