"""The collector: sample counters, credit the ledger, write the live file, flush the ledger.

Single writer of usage.json (the durable ledger, usage/ledger_file.py), of its live copy and of
collector.json (live rates and each line's days, usage/live_file.py), both rewritten every interval
in a tmpfs runtime folder. Signals: TERM/INT flush and exit, HUP reload.
"""
import logging
import os
from collections import deque

import psutil

from datacap import store
from datacap.devices.attach import Devices
from datacap.usage import adjustments, cycles, figure, imports, interfaces, ledger_file, lines, live_file, topups
from datacap.usage.ledger import Ledger
from datacap.usage.sources.feed import CACHE_SLACK_S, RouterFeed, router_seed

log = logging.getLogger("collector")

FLUSH_S = 60.0  # ledger to disk at least this often (and on exit, day change, alert)
BACKUP_S = 600.0  # usage.json.bak, the last good copy restored when the ledger is corrupt
ROUTES_S = 30.0  # how often "auto" looks at the routing table again
LINK_SPEED_S = 60.0
HANDOVER_TICKS = 120  # this machine's counted bytes per tick, kept to hand counting over to a gateway exactly


class Collector:
    """Sample counters each tick; credit the ledger; write the live file; flush the ledger."""

    def __init__(self, cfg, data_dir, live_dir, read_counters=interfaces.read_counters,
                 boot_time=psutil.boot_time, boot_id=interfaces.read_boot_id, clock=interfaces.boot_clock, now=cycles.local_now,
                 link_bps=interfaces.link_bps, default_routes=interfaces.default_route_interfaces, routers=None,
                 devices=None):
        self.cfg = cfg
        self.usage_path = ledger_file.path(data_dir)
        self.live_path = live_dir / live_file.NAME
        # the ledger as of the last tick, for a restart without a reboot; not where it would hit the disk
        self.copy_path = live_dir / ledger_file.COPY_NAME if live_dir.resolve() != data_dir.resolve() else None
        self.read_counters, self.boot_time, self.boot_id, self.clock, self.now = read_counters, boot_time, boot_id, clock, now
        self._link_bps, self.default_routes = link_bps, default_routes
        self.ledger = Ledger(ledger_file.load(self.usage_path, now(), self.copy_path))
        self.adjustments = store.CachedReader(data_dir / adjustments.NAME)
        self.topups = store.CachedReader(data_dir / topups.NAME)
        self.imports = store.CachedReader(data_dir / imports.NAME)
        self._apply_lines(cfg)
        self.last = {}  # name -> (rx, tx) at its last sighting
        self.seen = {}  # name -> clock() at its last sighting
        self.rates = {}  # name -> (rx_bps, tx_bps), bits per second
        self.counted = []  # this machine's interfaces that are watched (and count, unless a router does)
        self.local_of = {}  # this machine's interface -> the line it counts toward
        self.routers = routers or self._feed(cfg)
        self.last_error = None
        self._routes_at = self._speeds_at = self._flushed_at = self._backup_at = None
        self._speeds = {}
        self._day = None
        self._prev_t = None  # clock() of the previous sample
        self._credits = deque(maxlen=HANDOVER_TICKS)  # (clock(), seconds it covers, {name: (rx, tx)} counted)
        self.devices = Devices(cfg, data_dir, live_dir, clock, boot_id, **(devices or {}))  # LAN devices (a gateway)
        self.telemetry = self._meter(cfg)

    def _meter(self, cfg):
        """What the site's fleet agent sends costs the WAN: datacap's own use (None without `fleet_agent_url`)."""
        url = cfg.get("fleet_agent_url")
        if not url:
            return None
        from datacap.fleet.telemetry import TelemetryMeter  # requests and a Prometheus parser: only for a fleet site
        return TelemetryMeter(url, last=self.ledger.data.get("telemetry"))

    def _feed(self, cfg):
        first = lines.of(cfg)[0].name
        return RouterFeed(lines.router_specs(cfg), self.clock, self.ledger.data.get("promoted"), auto_line=first)

    def reload(self, cfg):
        if lines.router_specs(cfg) != lines.router_specs(self.cfg):  # continuing from the readings in memory
            self.routers.credit(self.ledger, self.now(), self.line_of)
            self.routers.stop()
            last = self.routers.last
            self.routers = self._feed(cfg)
            self.routers.start(last)
        if cfg.get("fleet_agent_url") != self.cfg.get("fleet_agent_url"):
            self.telemetry = self._meter(cfg)
        self.cfg = cfg
        self._apply_lines(cfg)
        self._routes_at = None  # look at the interfaces again with the new setting
        when = self.now()
        self.devices.reload(cfg, when, self.summaries(when), self.local_of, self.ledger)

    def _apply_lines(self, cfg):
        self.lines = lines.of(cfg)
        when = self.now()
        self.ledger.open_lines([line.name for line in self.lines], when)
        self.ledger.free_share = {line.name: (lambda a, b, p=line.plan, tz=when.tzinfo: p.free_share(a, b, tz))
                                  for line in self.lines}
        for line in self.lines:
            ups = store.ItemsFile.of_line(self.topups.read(), line.name, self.lines[0].name)
            for warning in line.plan.warnings(when.date(), ups):
                log.warning("%s: %s", line.name, warning)

    def counting(self, line=None):
        """The names that count toward a line now (any line for None)."""
        names = [n for n in self.counted if self.line_of(n)] + self.routers.counted()
        return [n for n in names if line is None or self.line_of(n) == line]

    def line_of(self, name):
        """The line a counter's bytes count toward, None when they only go to its totals."""
        line = self.local_of.get(name)
        if line is None:
            return self.routers.line_of(name)
        return line if self.routers.local_counts or not self.routers.auto else None

    def link_bps(self, name):
        """The link's bytes/s, None when unknown."""
        return self._speeds.get(name)

    def _refresh(self, t, counters):
        if self._routes_at is None or t - self._routes_at >= ROUTES_S:
            self._routes_at = t
            self.local_of = lines.local_interfaces(self.lines, self.cfg["interfaces"], counters, self.default_routes)
            counted = sorted(self.local_of) or interfaces.counted_interfaces(self.cfg["interfaces"], counters,
                                                                            self.default_routes)
            if counted != self.counted:
                log.info("counting interfaces: %s", ", ".join(f"{n} ({self.local_of[n]})" if n in self.local_of else n
                                                              for n in counted) or "(none found)")
            self.counted = counted
        if self._speeds_at is None or t - self._speeds_at >= LINK_SPEED_S:
            self._speeds_at = t
            self._speeds = {n: self._link_bps(n) for n in self.counted}

    def start(self):
        """First sample: count the gap since the checkpoint (or since boot after a reboot)."""
        t, when, counters, boot_id = self.clock(), self.now(), self.read_counters(), self.boot_id()
        self._refresh(t, counters)
        rebooted = self.ledger.rebooted_since_checkpoint(boot_id)
        seed = router_seed(self.ledger.data.get("checkpoint"), t, when, rebooted)
        self.ledger.resume(counters, boot_id, self.boot_time(), t, when, self.counted, self.link_bps, self.line_of)
        self.routers.start(seed)
        self.last = dict(counters)
        self.seen = {n: t for n in counters}
        self._day = when.date()
        self._prev_t = t
        summaries = self.summaries(when)
        self.devices.start(when, summaries, self.local_of, self.ledger)
        self.flush(t, when)
        self.write_live(when, summaries)  # at once: a long interval must not leave the dashboard without figures
        self.save_copy(when)

    def tick(self):
        t, when, counters = self.clock(), self.now(), self.read_counters()
        self._refresh(t, counters)
        elapsed = {n: t - self.seen[n] for n in counters if n in self.seen}
        credits = {}
        self.ledger.step(counters, self.last, elapsed, when, self.counted, self.link_bps, self.line_of, credits=credits)
        self._credits.append((t, t - self._prev_t, credits))
        first_reading = self.routers.credit(self.ledger, when, self.line_of)
        if self.routers.switched:  # auto found or left a gateway: a restart must know
            self.routers.switched = False
            self.ledger.urgent = True
            if self.routers.promoted:
                self.routers.overlap[self.routers.promoted["name"]] = self._counted_since(self.routers.promoted_at)
        if self.routers.auto:  # an explicit `sources` leaves what "auto" found for when it is back
            self.ledger.data["promoted"] = self.routers.promotion()
        self._rates(counters, elapsed)
        self._track(counters, t)
        for item in imports.items(self.imports.read()):  # days brought in from vnStat
            if self.ledger.merge_import(item):
                log.info("imported %d days of %s %s into line %s", len(item["days"]), item["source"],
                         item["interface"], item["line"])
        summaries = {line.name: self.summary(when, line) for line in self.lines}
        new_alerts = [a for line in self.lines
                      for a in self.ledger.alerts_due(line.name, summaries[line.name], line.alert_thresholds_percent, when)]
        for a in new_alerts:
            log.warning("cap alert: %s: %s%% of the cap used (%.2f GB)", a["line"], a["percent"], a["used_bytes"] / 1e9)
        self.ledger.checkpoint({**self.last, **self.routers.counters()}, self.routers.readings(), t, when)
        self.devices.tick(when, summaries, self.local_of, self.ledger)
        if (new_alerts or first_reading or self.ledger.urgent or when.date() != self._day
                or t - self._flushed_at >= FLUSH_S):
            self._day = when.date()
            self.flush(t, when)
        self.write_live(when, summaries)
        self.save_copy(when)

    def _counted_since(self, t0):
        """(rx, tx) this machine's interfaces counted after clock() t0 (a tick straddling it pro rata): what a
        gateway taking over from t0 on would count a second time."""
        rx = tx = 0.0
        for t, span, credits in self._credits:
            share = min(1.0, (t - t0) / span) if span > 0 else float(t > t0)
            if share > 0:
                rx += share * sum(c[0] for c in credits.values())
                tx += share * sum(c[1] for c in credits.values())
        return round(rx), round(tx)

    def _rates(self, counters, elapsed):
        self.rates = {}
        for n, (rx, tx) in counters.items():
            if n in self.last and elapsed.get(n, 0) > 0 and rx >= self.last[n][0] and tx >= self.last[n][1]:
                self.rates[n] = (round((rx - self.last[n][0]) * 8 / elapsed[n]), round((tx - self.last[n][1]) * 8 / elapsed[n]))

    def _track(self, counters, t):
        for n in counters:
            if n not in self.last and self.last:
                log.info("interface %s appeared", n)
        for n in set(self.last) - set(counters):
            if n in self.counted and n in self.seen and self.seen[n] == self._prev_t:
                log.warning("interface %s vanished; its last counters are kept", n)
        self.last.update(counters)  # a vanished counted interface keeps its last counters...
        for n in [n for n in self.last if n not in counters and n not in self.counted]:
            del self.last[n]  # ...others go, so container veths coming and going never pile up
            self.seen.pop(n, None)
        self.seen.update({n: t for n in counters})
        self._prev_t = t

    def summary(self, when, line=None):
        line = line or self.lines[0]
        first = self.lines[0].name
        return figure.summarize(self.ledger.line(line.name), line.plan, line.count, when,
                                store.ItemsFile.of_line(self.adjustments.read(), line.name, first),
                                store.ItemsFile.of_line(self.topups.read(), line.name, first))

    def count_as_of(self, when, line=None):
        """Epoch seconds up to which a line's figure holds every byte: this tick for this machine's interfaces;
        a router's last reading, less its own caching, for a router; None before it has read."""
        line = line or self.lines[0].name
        routers = [n for n in self.routers.counted() if self.routers.line_of(n) == line]
        if not routers:
            return when.timestamp()
        seen = [self.routers.read_at[n] for n in routers if n in self.routers.read_at]
        return when.timestamp() - (self.clock() - min(seen)) - CACHE_SLACK_S if len(seen) == len(routers) else None

    def flush(self, t, when):
        """Checkpoint and totals go to disk together, so a crash never loses or doubles bytes."""
        self.ledger.urgent = False
        self.ledger.checkpoint({**self.last, **self.routers.counters()}, self.routers.readings(), t, when)
        self.ledger.prune(when.date())
        self._book_telemetry(when)
        data = self.ledger.data
        data.update(updated_at=when.isoformat(timespec="seconds"), counted=self.counting(),
                    count_as_of={x.name: self.count_as_of(when, x.name) for x in self.lines}, flushes=data["flushes"] + 1)
        self.devices.flush(when)
        try:
            store.write_json_atomic(self.usage_path, data)
            if self._backup_at is None or t - self._backup_at >= BACKUP_S:
                store.write_json_atomic(self.usage_path.with_name("usage.json.bak"), data)
                self._backup_at = t
            self._flushed_at = t
            self.last_error = None
        except OSError as exc:  # disk full / read-only: the old file stays intact, retry next tick
            data["flushes"] -= 1  # the live copy still descends from the flush on disk
            self.last_error = f"cannot write {self.usage_path.name}: {exc.strerror or exc}"
            log.error(self.last_error)
            if self._flushed_at is None:
                self._flushed_at = t

    def _book_telemetry(self, when):
        """At each flush, with the agent's counters it started from: nothing sent is lost or booked twice."""
        if self.telemetry is None:
            return
        cost = self.telemetry.poll()
        if cost:
            line = lines.for_tests(self.cfg, default_routes=self.default_routes).name  # the line that carries it
            self.ledger.add_own(line, when, "telemetry", cost)
        self.ledger.data["telemetry"] = self.telemetry.last

    def save_copy(self, when):
        if self.copy_path is None:
            return
        try:
            store.write_json_atomic(self.copy_path, {**self.ledger.data, "saved_at": when.isoformat()}, fsync=False)
        except OSError as exc:
            log.error("cannot write %s: %s", self.copy_path, exc)

    def write_live(self, when, summaries, status="running"):
        ifaces = {}
        for n, (rx, tx) in sorted(self.last.items()):
            rx_bps, tx_bps = self.rates.get(n, (None, None))
            ifaces[n] = {"rx_bytes": rx, "tx_bytes": tx, "rx_bps": rx_bps, "tx_bps": tx_bps,
                         "counted": n in self.counted, "line": self.line_of(n),
                         "present": self.seen.get(n) == self._prev_t}
        as_of = self.count_as_of(when)
        live = {"status": status, "pid": os.getpid(), "updated_at": when.isoformat(timespec="milliseconds"),
                "interval_seconds": self.cfg["update_interval_seconds"], "counted": self.counting(),
                "count_as_of": as_of, "cycle_used_bytes": summaries[self.lines[0].name]["used_bytes"],
                "sources": self.routers.statuses("This computer (" + (", ".join(self.counted) or "no interface") + ")",
                                                 set(self.local_of.values())),
                "interfaces": ifaces, "last_error": self.last_error,
                "ledger_flushed_at": self.ledger.data.get("updated_at"), "totals": self.ledger.data["totals"],
                # each line's days as counted this instant: every reader's source for "cycle used"
                "lines": {name: live_file.line_part(self.ledger.line(name), s, self.count_as_of(when, name))
                          for name, s in summaries.items()}}
        live_file.write(self.live_path, live)

    def summaries(self, when):
        return {line.name: self.summary(when, line) for line in self.lines}
