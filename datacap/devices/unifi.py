"""UniFi clients: per-client byte counters from a UniFi Network controller, polled from a thread of their own.

The controller's API as Home Assistant's aiounifi uses it: a UniFi OS console (UDM, UCG, Cloud Key 2) answers its
base URL with 200, takes `POST /api/auth/login` and serves the Network API under `/proxy/network`; a classic
controller (port 8443) redirects its base URL, takes `POST /api/login`. Either way `GET /api/s/<site>/stat/sta`
lists the connected clients: {"meta": {"rc": "ok"}, "data": [{"mac", "hostname", "name", "ip", "is_wired",
"tx_bytes", "rx_bytes", "wired-tx_bytes", "wired-rx_bytes", "uptime"}, ...]}. An API key (UniFi OS 4 and later)
goes in `X-API-KEY` instead of a login. The counters are the access point's or switch port's: tx is what it sent
to the client (the client's download), rx what it received. They count the client's whole traffic, LAN included,
and start again with each connection (uptime says when).
"""
import logging
import threading
import time
from dataclasses import dataclass, field

import requests

from datacap.devices.settings import mac as as_mac

log = logging.getLogger("collector")

TIMEOUT_S = 10


class UnifiError(Exception):
    pass


@dataclass
class Snapshot:
    readings: dict  # "unifi rx <mac>" / "unifi tx <mac>" -> bytes
    identity: list  # the controller and site the counters belong to
    names: dict = field(default_factory=dict)  # mac -> name
    addresses: dict = field(default_factory=dict)  # ip -> mac
    restarted: set = field(default_factory=set)  # elements whose client connected again since the last reading


class Controller:
    """One HTTP conversation with the controller: log in when needed, list the clients."""

    def __init__(self, settings, session=None):
        self.s = settings
        self.base = settings["url"].rstrip("/")
        self.http = session or requests.Session()
        self.http.verify = settings.get("verify_tls", True)
        self.unifi_os = None
        self.logged_in = False
        if settings.get("api_key"):
            self.http.headers["X-API-KEY"] = settings["api_key"]

    def _detect(self):
        r = self.http.get(self.base + "/", allow_redirects=False, timeout=TIMEOUT_S)
        self.unifi_os = r.status_code == 200

    def login(self):
        if self.unifi_os is None:
            self._detect()
        if self.s.get("api_key"):
            return
        url = self.base + ("/api/auth/login" if self.unifi_os else "/api/login")
        r = self.http.post(url, json={"username": self.s["username"], "password": self.s["password"], "rememberMe": True},
                           timeout=TIMEOUT_S)
        if r.status_code in (401, 403) or _rc(r) == "error":
            raise UnifiError(f"the controller refused the login ({r.status_code} {_msg(r)})")
        r.raise_for_status()
        token = r.headers.get("X-CSRF-Token")
        if token:
            self.http.headers["X-CSRF-Token"] = token
        self.logged_in = True

    def clients(self):
        """The connected clients (stat/sta's data), logging in first or again when the session expired."""
        if self.unifi_os is None or (not self.logged_in and not self.s.get("api_key")):
            self.login()
        prefix = "/proxy/network" if self.unifi_os else ""
        url = f"{self.base}{prefix}/api/s/{self.s['site']}/stat/sta"
        r = self.http.get(url, timeout=TIMEOUT_S)
        if r.status_code == 401 and not self.s.get("api_key"):  # the session expired: once more after a login
            self.logged_in = False
            self.login()
            r = self.http.get(url, timeout=TIMEOUT_S)
        if r.status_code != 200 or _rc(r) != "ok":
            raise UnifiError(f"stat/sta answered {r.status_code} {_msg(r)}")
        data = r.json().get("data")
        if not isinstance(data, list):
            raise UnifiError("stat/sta answered without a client list")
        return [c for c in data if isinstance(c, dict)]


def _rc(r):
    try:
        return r.json().get("meta", {}).get("rc")
    except ValueError:
        return None


def _msg(r):
    try:
        return r.json().get("meta", {}).get("msg") or ""
    except ValueError:
        return ""


def _count(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def snapshot(clients, identity, previous, now):
    """A Snapshot of stat/sta's clients; previous: {mac: (uptime, when)} of the last one, updated in place."""
    out = Snapshot({}, identity)
    for c in clients:
        mac = as_mac(c.get("mac"))
        if mac is None:
            continue
        wired = c.get("is_wired") and "wired-tx_bytes" in c
        down, up = (_count(c.get("wired-tx_bytes")), _count(c.get("wired-rx_bytes"))) if wired else \
            (_count(c.get("tx_bytes")), _count(c.get("rx_bytes")))
        if down is None or up is None:
            continue
        out.readings[f"unifi rx {mac}"], out.readings[f"unifi tx {mac}"] = down, up
        uptime = c.get("uptime") if isinstance(c.get("uptime"), (int, float)) else None
        before = previous.get(mac)
        if before is not None and uptime is not None and before[0] is not None and (
                uptime < before[0] or uptime < now - before[1] - 1):
            out.restarted |= {f"unifi rx {mac}", f"unifi tx {mac}"}  # connected again: its counters began anew
        previous[mac] = (uptime, now)
        name = c.get("name") or c.get("hostname")
        if isinstance(name, str) and name:
            out.names[mac] = name[:40]
        if isinstance(c.get("ip"), str):
            out.addresses[c["ip"]] = mac
    return out


class Poller:
    """Polls the controller every interval_seconds; the collector takes the newest snapshot each tick."""

    def __init__(self, settings, clock=time.monotonic, controller=None):
        self.settings, self.clock = settings, clock
        self.controller = controller or Controller(settings)
        self.identity = [self.controller.base, settings["site"]]
        self._latest, self._lock = None, threading.Lock()
        self._previous = {}
        self._stop = threading.Event()
        self._status = {"url": self.controller.base, "site": settings["site"], "status": "starting",
                        "last_success": None, "last_error": None, "clients": 0}

    def poll(self):
        try:
            clients = self.controller.clients()
        except (requests.RequestException, UnifiError, ValueError) as exc:
            if self._status["last_error"] != str(exc):
                log.warning("UniFi controller %s: %s", self.controller.base, exc)
            self._status.update(status="failing", last_error=str(exc))
            return
        snap = snapshot(clients, self.identity, self._previous, self.clock())
        with self._lock:
            self._latest = snap
        self._status.update(status="ok", last_error=None, clients=len(clients),
                            last_success=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def take(self):
        """The newest snapshot not taken yet, or None."""
        with self._lock:
            snap, self._latest = self._latest, None
        return snap

    def status(self):
        return dict(self._status)

    def run(self):
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.settings["interval_seconds"])

    def start(self):
        threading.Thread(target=self.run, name="unifi", daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
