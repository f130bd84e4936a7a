"""Send each piece of news once to each destination, retrying failures with back-off, from one thread.

What was sent is kept in data/notify.json (this thread is its only writer) as "destination key" pairs,
so a restart sends nothing twice and a failing destination never repeats a message to the others.
A destination seen for the first time gets this cycle's cap alerts and the budget pauses still in force (the
collector recorded them, and they may not have reached anyone yet) but not older throttle or outage events: those
are not news.
"""
import logging
import socket
import threading
import time
from datetime import datetime, timezone

from datacap import store
from datacap.fleet.settings import site_name
from datacap.notify import destinations, events

log = logging.getLogger("notify")

NAME = "notify.json"
OLD_NAME = "webhooks.json"  # before Apprise: the webhook's sent keys
SCAN_S = 2.0
RETRY_MAX_S = 300.0
GIVE_UP_S = 6 * 3600.0  # an outage notice waits for the connection to come back, but not forever
KEYS_KEPT = 1000


def retry_delay(attempts):
    return min(RETRY_MAX_S, 2.0 ** attempts)


class Notifier:
    """Scan the Views for news, send what is new, retry with back-off; never blocks anything else."""

    def __init__(self, views, data_dir, clock=time.monotonic, host=None, make_destinations=None):
        self.views, self.clock = views, clock
        self.host = host or socket.gethostname()
        self.make_destinations = make_destinations or (lambda cfg: destinations.from_config(cfg, self.host))
        self.path = data_dir / NAME
        state = store.read_json(self.path) or {}
        self.sent = list(state.get("sent", []))
        self.known = set(state.get("known", []))
        self._old_keys = None if state else (store.read_json(data_dir / OLD_NAME) or {}).get("sent")
        self.pending = {}  # (destination id, key) -> [news, attempts, next_try, first_try]
        self.last_error = None
        self._dests, self._dests_cfg = [], None
        self._stop = threading.Event()

    def destinations(self):
        cfg = (self.views.cfg.get("webhook_url"), tuple(self.views.cfg.get("notify_urls") or ()),
               site_name(self.views.cfg))
        if cfg != self._dests_cfg:  # a SIGHUP or PUT /api/config changed them
            self._dests, self._dests_cfg = self.make_destinations(self.views.cfg), cfg
            self.pending = {k: v for k, v in self.pending.items() if k[0] in {d.id for d in self._dests}}
        return self._dests

    def scan(self, now=None):
        found = events.news(self.views, now=now)  # worded with the site's name
        sent = set(self.sent)
        for dest in self.destinations():
            new = [n for n in found if f"{dest.id} {n.key}" not in sent and (dest.id, n.key) not in self.pending]
            if dest.id not in self.known:
                new = self._welcome(dest, new)
            for n in new:
                self.pending[(dest.id, n.key)] = [n, 0, self.clock(), self.clock()]

    def _welcome(self, dest, new):
        """A destination's first scan: what it should still get."""
        self.known.add(dest.id)
        if self._old_keys is not None and dest.id.startswith("webhook:"):
            old = {f"{dest.id} {k}" for k in self._old_keys}  # webhooks.json's keys still count
            self.sent = (self.sent + sorted(old))[-KEYS_KEPT:]
            new = [n for n in new if f"{dest.id} {n.key}" not in old]
        recorded = ("cap_alert", "device_budget")  # the collector recorded them: they may not have reached anyone yet
        self._mark_sent(dest.id, [n for n in new if n.kind not in recorded])
        return [n for n in new if n.kind in recorded]

    def send_due(self):
        by_id = {d.id: d for d in self._dests}
        for (dest_id, key), item in list(self.pending.items()):
            n, attempts, next_try, first_try = item
            if self.clock() < next_try:
                continue
            error = by_id[dest_id].send(n)
            if error is None:
                del self.pending[(dest_id, key)]
                self._mark_sent(dest_id, [n])
                log.info("sent to %s: %s", by_id[dest_id].label, n.text)
                continue
            item[1] = attempts = attempts + 1
            item[2] = self.clock() + retry_delay(attempts)
            self.last_error = {"destination": by_id[dest_id].label, "event": n.kind, "error": error,
                               "attempts": attempts, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            if self.clock() - first_try >= GIVE_UP_S:
                del self.pending[(dest_id, key)]
                self._mark_sent(dest_id, [n])  # exactly once means never twice: give up loudly
                log.error("gave up on %s after %d attempts: %s (%s)", by_id[dest_id].label, attempts, n.text, error)
            else:
                log.warning("sending to %s failed (attempt %d, retry in %.0f s): %s",
                            by_id[dest_id].label, attempts, retry_delay(attempts), error)

    def _mark_sent(self, dest_id, items):
        self.sent = (self.sent + [f"{dest_id} {n.key}" for n in items])[-KEYS_KEPT:]
        try:
            store.write_json_atomic(self.path, {"known": sorted(self.known), "sent": self.sent})
        except OSError as exc:
            log.error("cannot write %s: %s", self.path, exc)

    def status(self):
        """For /api/system."""
        return {"destinations": [d.label for d in self._dests], "pending": len(self.pending),
                "last_error": self.last_error}

    def run(self):
        while not self._stop.is_set():
            try:
                self.scan()
                self.send_due()
            except Exception:  # a bug here must not end notifications for good
                log.exception("notify loop error")
            self._stop.wait(SCAN_S)

    def start(self):
        threading.Thread(target=self.run, name="notify", daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
