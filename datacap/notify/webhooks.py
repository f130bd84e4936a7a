"""Webhook alerts: cap thresholds and throttle start/end, POSTed as JSON from a background thread.

Payload (works with Slack's `text`, Discord's `content`, and ntfy, which shows the raw body):
    {"event": "cap_alert" | "throttle_start" | "throttle_end", "text": "...", "content": "...",
     "host": "...", "time": "ISO 8601", "data": {...the alert or event...}}

Each message has a key (cycle + threshold, or session + onset); keys sent are kept in
data/webhooks.json (this thread is its only writer), so a restart never sends one twice.
"""
import logging
import socket
import threading
import time
from datetime import datetime, timezone

import requests

from datacap import store

log = logging.getLogger("webhooks")

SCAN_S = 2.0
TIMEOUT_S = 5.0
ATTEMPTS = 5  # then give up on that message, and say so in the log
KEYS_KEPT = 500


def messages(usage, stats, cycle_start):
    """(key, payload) for every alert of this cycle and every throttle event of this session."""
    host = socket.gethostname()
    out = []
    for a in (usage or {}).get("alerts", []):
        if a["cycle_start"] == cycle_start:
            text = (f"datacap on {host}: {a['percent']}% of the data cap used "
                    f"({a['used_bytes'] / 1e9:.2f} of {a['cap_bytes'] / 1e9:.0f} GB this cycle)")
            out.append((f"alert:{a['cycle_start']}:{a['percent']}", "cap_alert", text, a))
    for ev in (stats or {}).get("throttle_events", []):
        sid = stats.get("session_id")
        text = (f"datacap on {host}: throttled at {ev['at_gb']:.2f} GB, {ev['baseline_mbps']:.1f} -> "
                f"{ev['throttled_mbps']:.1f} Mbit/s since {ev['start']}")
        out.append((f"throttle-start:{sid}:{ev['start']}", "throttle_start", text, ev))
        if ev.get("end"):
            out.append((f"throttle-end:{sid}:{ev['start']}", "throttle_end",
                        f"datacap on {host}: speed recovered at {ev['end']} after throttling since {ev['start']}", ev))
    return [(key, {"event": kind, "text": text, "content": text, "host": host,
                   "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": data})
            for key, kind, text, data in out]


class Notifier:
    """Scan the data files, send what is new, retry with back-off; never blocks anything else."""

    def __init__(self, views, data_dir, post=requests.post, clock=time.monotonic):
        self.views = views
        self.path = data_dir / "webhooks.json"
        self.post, self.clock = post, clock
        state = store.read_json(self.path) or {}
        self.sent = list(state.get("sent", []))
        self.first_scan = "sent" not in state  # throttle events from before we existed are not news
        self.pending = {}  # key -> [payload, attempts, next_try]
        self.last_error = None
        self._stop = threading.Event()

    def scan(self):
        url = self.views.cfg.get("webhook_url")
        stats = self.views.downloader.read()
        found = messages(self.views.usage.read(), stats, self.views.summary()["start"])
        for key, payload in found:
            if key in self.sent or key in self.pending:
                continue
            if self.first_scan and not key.startswith("alert:"):
                self._mark_sent(key)
            elif url:
                self.pending[key] = [payload, 0, self.clock()]
        self.first_scan = False

    def send_due(self):
        url = self.views.cfg.get("webhook_url")
        for key, item in list(self.pending.items()):
            payload, attempts, next_try = item
            if not url or self.clock() < next_try:
                continue
            try:
                r = self.post(url, json=payload, timeout=TIMEOUT_S)
                if r.status_code >= 300:
                    raise requests.RequestException(f"HTTP {r.status_code}")
                del self.pending[key]
                self._mark_sent(key)
                log.info("webhook sent: %s", payload["text"])
            except requests.RequestException as exc:
                item[1] = attempts = attempts + 1
                item[2] = self.clock() + 2 ** attempts
                self.last_error = f"{key}: {exc}"
                if attempts >= ATTEMPTS:
                    del self.pending[key]
                    self._mark_sent(key)  # exactly once means never twice: give up loudly
                    log.error("webhook gave up after %d attempts: %s (%s)", attempts, payload["text"], exc)
                else:
                    log.warning("webhook attempt %d failed, retrying in %d s: %s", attempts, 2 ** attempts, exc)

    def _mark_sent(self, key):
        self.sent = (self.sent + [key])[-KEYS_KEPT:]
        try:
            store.write_json_atomic(self.path, {"sent": self.sent})
        except OSError as exc:
            log.error("cannot write %s: %s", self.path, exc)

    def run(self):
        while not self._stop.is_set():
            try:
                self.scan()
                self.send_due()
            except Exception:  # a bug here must not kill alerts for good
                log.exception("webhook loop error")
            self._stop.wait(SCAN_S)

    def start(self):
        threading.Thread(target=self.run, name="webhooks", daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
