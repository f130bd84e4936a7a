"""The collector's side of the router sources: start them, credit their readings, report them.

Readings arrive on the sources' own schedule; each is credited against the previous reading of the
same counter: the one in memory across a settings change, the ledger's checkpoint (with when it was
read and the router's uptime then) after a restart of ours, so neither counts a byte twice nor loses
the gap. With "sources": "auto", a UPnP gateway at our default route that has answered with growing
counters a few times takes over counting from this machine's interfaces; the ledger remembers it
(`promoted`), so a restart counts it at once, until the default route goes elsewhere.
"""
import logging

from datacap.usage import ledger_file
from datacap.usage.interfaces import default_gateways
from datacap.usage.sources import build, router_source
from datacap.usage.sources.gateway import GatewaySearch
from datacap.usage.sources.router import Loop

log = logging.getLogger("collector")

AUTO_READINGS = 3  # growing readings before an auto-found gateway counts
CACHE_SLACK_S = 5.0  # routers (and snmpd) refresh the counters they serve every few seconds
ROUTE_CHECK_S = 30.0  # how often a promoted gateway is checked against the default route


class RouterFeed:
    def __init__(self, specs, clock, promoted=None, gateways=default_gateways, auto_line=None):
        """specs: [(source spec, the line it counts toward or None)] (lines.router_specs), or "auto" for
        `auto_line`: this machine's interfaces until a gateway is found and promoted."""
        self.auto, self.auto_line = specs == "auto", auto_line
        self.clock, self._gateways = clock, gateways
        self.promoted = promoted if self.auto and promoted else None
        self.local_counts, self.sources = build(specs, clock, self.promoted, auto_line)
        self.last = {}  # name -> (rx, tx, clock() of the reading or None, uptime or None): the last credited
        self.read_at = {}  # name -> clock() of its latest reading, changed or not: the count holds up to then
        self._seed = {}
        self._growing = 0
        self._loop = None
        self._route_checked_at = None
        self.switched = False  # the counting source changed since the collector last looked
        self.promoted_at = None  # clock() of the reading from which a promoted gateway counts
        # name -> (rx, tx) this machine counted after that reading: not counted again (kept in `promoted`)
        self.overlap = {self.promoted["name"]: tuple(self.promoted.get("overlap") or (0, 0))} if self.promoted else {}

    def start(self, seed):
        """seed: {name: (rx, tx, t, uptime)}, the last readings credited before this feed."""
        self._seed = dict(seed)
        for s in self.sources:
            self._start(s)

    def _start(self, s):
        if s.name in self._seed:
            self.last[s.name] = self._seed[s.name]
            if self._seed[s.name][2] is not None:
                self.read_at[s.name] = self._seed[s.name][2]
            if hasattr(s, "seed"):
                rx, tx, t, uptime = self._seed[s.name]
                s.seed(rx, tx, uptime, t)
        if isinstance(s, GatewaySearch):
            s.start()
            return
        if self._loop is None:
            self._loop = Loop()
        s.start(self._loop)

    def stop(self):
        for s in self.sources:
            if isinstance(s, GatewaySearch):
                s.stop()
        if self._loop:
            self._loop.stop()
            self._loop = None

    def credit(self, ledger, when, line_of):
        """Credit every reading that arrived since the last call (line_of(name): the line a counting counter
        counts toward); True when a counter was seen for the first time (the checkpoint needs it at once,
        so that a crash before the next flush loses nothing)."""
        self._found_gateways()
        self._check_route(ledger, when)
        first = False
        for s in self.sources:
            readings, notes = s.take()
            for reason, detail in notes:
                ledger.event(when, s.name, reason, 0, detail)
            for r in readings:
                self.read_at[s.name] = r.t
                prev = self.last.get(s.name)
                if prev is not None and (r.rx, r.tx) == prev[:2] and not r.restarted:
                    continue  # unchanged: keep when the value was first seen (routers cache their counters)
                if prev is not None:
                    # since the previous value was first seen, plus the router's own caching of its counters
                    elapsed = r.t - prev[2] + CACHE_SLACK_S if prev[2] is not None else None
                    ledger.step({s.name: (r.rx, r.tx)}, {s.name: prev[:2]}, elapsed, when, [s.name],
                                lambda name: r.link_bps, line_of if s.counts else (lambda name: None),
                                {s.name} if r.restarted else (), {s.name} if r.wide else (), overlap=self.overlap)
                    self._auto_promote(s, prev, r, ledger, when)
                first = first or prev is None
                self.last[s.name] = (r.rx, r.tx, r.t, r.uptime)
        return first

    def _found_gateways(self):
        """A search that found our gateway becomes the UPnP source reading it."""
        for i, s in enumerate(self.sources):
            if isinstance(s, GatewaySearch) and s.found:
                self.sources[i] = router_source({**s.spec, "url": s.found}, s.line, self.clock)
                log.info("found a UPnP gateway at %s", s.found)
                self._start(self.sources[i])

    def _auto_promote(self, s, prev, r, ledger, when):
        if not self.auto or s.counts:
            return
        self._growing = self._growing + 1 if (r.rx, r.tx) > prev[:2] and not r.restarted else 0
        if self._growing >= AUTO_READINGS:
            s.counts, s.line, self.local_counts, self.switched = True, self.auto_line, False, True
            self.promoted, self.promoted_at = {"url": s.url, "name": s.name}, r.t
            log.info("counting the household at %s from now on (this computer's interfaces are shown beside it)",
                     s.label())
            ledger.event(when, s.name, "source", 0, f"{s.label()} answered with growing counters: it counts from now on")

    def _check_route(self, ledger, when):
        """A promoted gateway no longer at our default route (another network): this computer counts again."""
        t = self.clock()
        if not self.promoted or (self._route_checked_at is not None and t - self._route_checked_at < ROUTE_CHECK_S):
            return
        self._route_checked_at = t
        via = self._gateways()
        s = next((x for x in self.sources if x.name == self.promoted["name"]), None)
        if s is None or not via or s.target in via:
            return
        i = self.sources.index(s)
        self.sources[i] = router_source({"type": "upnp"}, None, self.clock)
        self._start(self.sources[i])
        self.last.pop(s.name, None)  # its counters again later are not a gap to fill on top of this computer's
        self.read_at.pop(s.name, None)
        self.local_counts, self.promoted, self.switched, self._growing = True, None, True, 0
        log.info("the default route no longer goes through %s: this computer's interfaces count again", s.label())
        ledger.event(when, s.name, "source", 0, f"the default route no longer goes through {s.label()}: "
                                               "this computer counts again")

    def promotion(self):
        """What the ledger keeps of a promoted gateway: its URL and name, and the overlap not yet taken off."""
        if not self.promoted:
            return None
        return {**self.promoted, "overlap": list(self.overlap.get(self.promoted["name"], (0, 0)))}

    def counters(self):
        """{name: [rx, tx]} of the last readings, for the checkpoint."""
        return {name: [v[0], v[1]] for name, v in self.last.items()}

    def readings(self):
        """{name: {"t", "uptime"}} of the last readings, for the checkpoint."""
        return {name: {"t": v[2], "uptime": v[3]} for name, v in self.last.items()}

    def counted(self):
        return [s.name for s in self.sources if s.counts]

    def line_of(self, name):
        """The line a router counter counts toward now, None when it is only shown."""
        return next((s.line for s in self.sources if s.name == name and s.counts), None)

    def statuses(self, local_label, local_lines):
        """Every source for /api/sources: this computer (counting toward `local_lines`), then the routers."""
        counts = bool(local_lines) and (self.local_counts or not self.auto)
        local = {"type": "local", "target": "this computer", "name": "local", "counted": counts,
                 "lines": sorted(local_lines) if counts else [], "label": local_label, "status": "ok",
                 "last_success": None, "last_error": None, "poll_interval_seconds": None}
        return [local] + [{**s.status(), "line": s.line if s.counts else None} for s in self.sources]


def router_seed(cp, t, when, rebooted):
    """The routers' last readings from the ledger's checkpoint, with when they were read on the collector's
    clock (`t` now, `when` the wall clock; after a reboot the flush is placed on this boot's clock by wall time)."""
    cp = cp or {}
    flushed_t = cp.get("boottime_s")
    if rebooted or flushed_t is None:  # another boot: place the flush on this boot's clock by wall time
        at = ledger_file.epoch(cp.get("at"))
        flushed_t = t - max(0.0, when.timestamp() - at) if at is not None else None
    readings = cp.get("readings") or {}
    seed = {}
    for name, (rx, tx) in (cp.get("counters") or {}).items():
        r = readings.get(name) or {}
        read_t = r.get("t") if isinstance(r.get("t"), (int, float)) else None
        if rebooted and read_t is not None and flushed_t is not None and cp.get("boottime_s") is not None:
            read_t = flushed_t - (cp["boottime_s"] - read_t)
        seed[name] = (rx, tx, read_t if read_t is not None else flushed_t, r.get("uptime"))
    return seed
