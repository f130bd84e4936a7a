""""sources": "auto" before a gateway is known: an SSDP search now and every 10 minutes, in a thread.

Only a gateway at our IPv4 default route is ours (a mesh node or a second router answering is named
in the status, not counted). The collector's feed (sources/feed.py) turns a found gateway into a
UpnpSource; until then this machine's interfaces count, and "not found" is nothing wrong.
"""
import logging
import threading
from datetime import datetime, timezone
from urllib.parse import urlparse

from datacap.usage.interfaces import default_gateways
from datacap.usage.sources import ssdp

log = logging.getLogger("collector")

SEARCH_AGAIN_S = 600.0


def ours(urls, gateways):
    """(ours, others): the answers at one of our default gateways, and the rest. With no IPv4 default
    route to tell them apart, every answer is ours."""
    mine = [u for u in urls if not gateways or urlparse(u).hostname in gateways]
    return mine, [u for u in urls if u not in mine]


class GatewaySearch:
    """A search standing in for the UPnP source it becomes; `spec` and `counts` are that source's."""
    kind, target, name, interval_s, line = "upnp", "gateway", "upnp:gateway", SEARCH_AGAIN_S, None

    def __init__(self, spec=None, counts=False, search=ssdp.search, gateways=default_gateways):
        self.spec, self.counts = {**(spec or {}), "type": "upnp"}, counts
        self._search, self._gateways = search, gateways
        self.found = None  # the description URL of our gateway, once one answered
        self.searches = 0
        self.last_error = None
        self._stop = threading.Event()

    def start(self, loop=None):
        threading.Thread(target=self._run, name="gateway-search", daemon=True).start()

    def stop(self):
        self._stop.set()

    def _run(self):
        while not self._stop.is_set() and self.found is None:
            self.search_once()
            self._stop.wait(SEARCH_AGAIN_S)

    def search_once(self):
        try:
            mine, others = ours(self._search(), self._gateways())
        except OSError as exc:  # no multicast route, no network yet
            mine, others = [], []
            self.last_error = {"time": _now(), "message": f"SSDP search failed: {exc.strerror or exc}"}
        else:
            self.last_error = None if not others else {"time": _now(), "message": (
                f"UPnP gateways answered at {', '.join(others)}, but the default route goes elsewhere: "
                "set the router's URL in sources to count one of them")}
        self.searches += 1
        if mine:
            self.found = mine[0]
        elif self.searches == 1:
            log.info("no UPnP gateway answered on the LAN: this computer's interfaces count (searching again "
                     "every %d minutes)", SEARCH_AGAIN_S // 60)

    def take(self):
        return [], []

    def label(self):
        return "Router (UPnP, searching)"

    def status(self):
        return {"type": self.kind, "target": self.target, "name": self.name, "counted": self.counts, "label": self.label(),
                "status": "starting" if not self.searches else "not_found", "last_success": None,
                "last_error": self.last_error, "poll_interval_seconds": self.interval_s}


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
