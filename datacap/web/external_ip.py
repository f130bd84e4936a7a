"""Optional external IP and ISP lookup (off by default): a background thread keeps a cached answer.

`external_ip_url` may answer plain text (the IP) or JSON with `ip` (or `query`) and `org`/`isp`
(as ipinfo.io and ip-api.com do). The API only ever reads the cache.
"""
import logging
import threading
import time
from datetime import datetime, timezone

import requests

log = logging.getLogger("external_ip")

TIMEOUT_S = 3.0
REFRESH_S = 600.0
RETRY_S = 60.0


def parse(response):
    try:
        body = response.json()
    except ValueError:
        return {"ip": response.text.strip()[:64], "isp": None}
    if not isinstance(body, dict):
        return {"ip": str(body)[:64], "isp": None}
    return {"ip": str(body.get("ip") or body.get("query") or "")[:64] or None,
            "isp": (body.get("org") or body.get("isp") or body.get("asn_org") or None)}


class ExternalIP:
    def __init__(self, get_config, get=requests.get):
        self.get_config, self.http_get = get_config, get
        self.value = None  # {"ip", "isp", "checked_at", "error"}
        self._stop = threading.Event()

    def refresh(self):
        url = self.get_config().get("external_ip_url")
        if not url:
            self.value = None
            return REFRESH_S
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            r = self.http_get(url, timeout=TIMEOUT_S, headers={"Accept": "application/json"})
            r.raise_for_status()
            self.value = {**parse(r), "checked_at": now, "error": None}
            return REFRESH_S
        except requests.RequestException as exc:
            log.warning("external IP lookup failed: %s", exc)
            self.value = {**(self.value or {"ip": None, "isp": None}), "checked_at": now, "error": str(exc)[:200]}
            return RETRY_S

    def run(self):
        while not self._stop.is_set():
            wait = self.refresh()
            deadline = time.monotonic() + wait
            url = self.get_config().get("external_ip_url")
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._stop.wait(1.0)
                if self.get_config().get("external_ip_url") != url:  # settings changed: look again now
                    break

    def start(self):
        threading.Thread(target=self.run, name="external-ip", daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
