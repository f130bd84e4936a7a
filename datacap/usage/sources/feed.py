"""The collector's side of the router sources: start them, credit their readings, report them.

Readings arrive on the sources' own schedule; each is credited against the previous reading of the
same counter (seeded from the ledger's checkpoint, so a collector restart fills the gap). With
"sources": "auto", a UPnP gateway that has answered with growing counters a few times takes over
counting from this machine's interfaces.
"""
import logging

from datacap.usage.sources import build
from datacap.usage.sources.router import Loop

log = logging.getLogger("collector")

AUTO_READINGS = 3  # growing readings before an auto-found gateway counts
CACHE_SLACK_S = 5.0  # routers (and snmpd) refresh the counters they serve every few seconds


class RouterFeed:
    def __init__(self, setting, clock):
        self.auto = setting == "auto"
        self.local_counts, self.sources = build(setting, clock)
        self.last = {}  # name -> (rx, tx, clock() of the reading, or None when seeded from the checkpoint)
        self._growing = 0
        self._loop = None

    def start(self, checkpoint_counters):
        for s in self.sources:
            if s.name in checkpoint_counters:
                self.last[s.name] = (*checkpoint_counters[s.name], None)
        if self.sources:
            self._loop = Loop()
            for s in self.sources:
                s.start(self._loop)

    def stop(self):
        if self._loop:
            self._loop.stop()

    def credit(self, ledger, when):
        """Credit every reading that arrived since the last call; True when a counter was seen for the first
        time (the checkpoint needs it at once, so that a crash before the next flush loses nothing)."""
        first = False
        for s in self.sources:
            readings, notes = s.take()
            for reason, detail in notes:
                ledger.event(when, s.name, reason, 0, detail)
            for r in readings:
                prev = self.last.get(s.name)
                if prev is not None and (r.rx, r.tx) == prev[:2] and not r.restarted:
                    continue  # unchanged: keep when the value was first seen (routers cache their counters)
                if prev is not None:
                    # since the previous value was first seen, plus the router's own caching of its counters
                    elapsed = r.t - prev[2] + CACHE_SLACK_S if prev[2] is not None else None
                    ledger.step({s.name: (r.rx, r.tx)}, {s.name: prev[:2]}, elapsed, when, [s.name],
                                lambda name: r.link_bps, {s.name} if s.counts else set(),
                                {s.name} if r.restarted else (), {s.name} if r.wide else ())
                    self._auto_promote(s, prev, r, ledger, when)
                first = first or prev is None
                self.last[s.name] = (r.rx, r.tx, r.t)
        return first

    def _auto_promote(self, s, prev, r, ledger, when):
        if not self.auto or s.counts:
            return
        self._growing = self._growing + 1 if (r.rx, r.tx) > prev[:2] and not r.restarted else 0
        if self._growing >= AUTO_READINGS:
            s.counts, self.local_counts = True, False
            log.info("counting the household at %s from now on (this computer's interfaces are shown beside it)",
                     s.label())
            ledger.event(when, s.name, "source", 0, f"{s.label()} answered with growing counters: it counts from now on")

    def counters(self):
        """{name: [rx, tx]} of the last readings, for the checkpoint."""
        return {name: [rx, tx] for name, (rx, tx, _) in self.last.items()}

    def counted(self):
        return [s.name for s in self.sources if s.counts]

    def statuses(self, local_label):
        local = {"type": "local", "target": "this computer", "name": "local", "counted": self.local_counts,
                 "label": local_label, "status": "ok", "last_success": None, "last_error": None,
                 "poll_interval_seconds": None}
        return [local] + [s.status() for s in self.sources]
