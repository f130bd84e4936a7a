"""The collector: sample counters, credit the ledger, write the live file, flush the ledger.

Single writer of usage.json (the durable ledger, usage/ledger.py) and collector.json (live rates
and the cycle figure, usage/live_file.py, rewritten every interval in a tmpfs runtime folder).
Signals: TERM/INT flush and exit, HUP reload.
"""
import logging
import os
import signal
import time
from datetime import datetime

import psutil

from datacap import process, store
from datacap.usage import cycles, interfaces, live_file, plans, topups
from datacap.usage import ledger as ledgermod
from datacap.usage.sources.feed import RouterFeed

log = logging.getLogger("collector")

FLUSH_S = 60.0  # ledger to disk at least this often (and on exit, day change, alert)
BACKUP_S = 600.0  # usage.json.bak, the last good copy restored when the ledger is corrupt
ROUTES_S = 30.0  # how often "auto" looks at the routing table again
LINK_SPEED_S = 60.0


def boot_clock():
    """Seconds since boot, suspend included, comparable across our restarts."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


def local_now():
    return datetime.now().astimezone()


class Collector:
    """Sample counters each tick; credit the ledger; write the live file; flush the ledger."""

    def __init__(self, cfg, data_dir, live_dir, read_counters=interfaces.read_counters,
                 boot_time=psutil.boot_time, boot_id=interfaces.read_boot_id, clock=boot_clock, now=local_now,
                 link_bps=interfaces.link_bps, default_routes=interfaces.default_route_interfaces, routers=None):
        self.cfg = cfg
        self.usage_path = data_dir / "usage.json"
        self.live_path = live_dir / live_file.NAME
        self.read_counters, self.boot_time, self.boot_id, self.clock, self.now = read_counters, boot_time, boot_id, clock, now
        self._link_bps, self.default_routes = link_bps, default_routes
        self.ledger = ledgermod.Ledger(ledgermod.load(self.usage_path, now()))
        self.adjustments = store.CachedReader(data_dir / "adjustments.json")
        self.topups = store.CachedReader(data_dir / topups.NAME)
        self._free_windows(cfg)
        self.last = {}  # name -> (rx, tx) at its last sighting
        self.seen = {}  # name -> clock() at its last sighting
        self.rates = {}  # name -> (rx_bps, tx_bps), bits per second
        self.counted = []  # this machine's interfaces that are watched (and count, unless a router does)
        self.routers = routers or RouterFeed(cfg["sources"], clock)
        self.last_error = None
        self._routes_at = self._speeds_at = self._flushed_at = self._backup_at = None
        self._speeds = {}
        self._day = None
        self._prev_t = None  # clock() of the previous sample

    def reload(self, cfg):
        if cfg["sources"] != self.cfg["sources"]:  # new router sources: start them afresh
            self.routers.stop()
            self.routers = RouterFeed(cfg["sources"], self.clock)
            self.routers.start(self.routers_checkpoint())
        self.cfg = cfg
        self._free_windows(cfg)
        self._routes_at = None  # look at the interfaces again with the new setting

    def _free_windows(self, cfg):
        windows, tz = plans.plan_of(cfg).get("free_windows"), self.now().tzinfo
        self.ledger.free_share = lambda a, b: plans.free_share(windows, a, b, tz)
        for warning in plans.warnings(cfg, self.now().date()):
            log.warning(warning)

    def routers_checkpoint(self):
        return (self.ledger.data.get("checkpoint") or {}).get("counters", {})

    def local_counted(self):
        """The cap's rule for this machine's interfaces: None (all count) or set() (shown only)."""
        return None if self.routers.local_counts else set()

    def counting(self):
        """The names that count toward the cap now."""
        return self.counted if self.routers.local_counts else self.routers.counted()

    def link_bps(self, name):
        """The link's bytes/s, None when unknown."""
        return self._speeds.get(name)

    def _refresh(self, t, counters):
        if self._routes_at is None or t - self._routes_at >= ROUTES_S:
            self._routes_at = t
            counted = interfaces.counted_interfaces(self.cfg["interfaces"], counters, self.default_routes)
            if counted != self.counted:
                log.info("counting interfaces: %s", ", ".join(counted) or "(none found)")
            self.counted = counted
        if self._speeds_at is None or t - self._speeds_at >= LINK_SPEED_S:
            self._speeds_at = t
            self._speeds = {n: self._link_bps(n) for n in self.counted}

    def start(self):
        """First sample: count the gap since the checkpoint (or since boot after a reboot)."""
        t, when, counters = self.clock(), self.now(), self.read_counters()
        self._refresh(t, counters)
        self.ledger.resume(counters, self.boot_id(), self.boot_time(), t, when, self.counted, self.link_bps,
                           self.routers.local_counts)
        self.routers.start(self.routers_checkpoint())
        self.last = dict(counters)
        self.seen = {n: t for n in counters}
        self._day = when.date()
        self._prev_t = t
        self.flush(t, when)

    def tick(self):
        t, when, counters = self.clock(), self.now(), self.read_counters()
        self._refresh(t, counters)
        elapsed = {n: t - self.seen[n] for n in counters if n in self.seen}
        self.ledger.step(counters, self.last, elapsed, when, self.counted, self.link_bps, self.local_counted())
        first_reading = self.routers.credit(self.ledger, when)
        self.rates = {}
        for n, (rx, tx) in counters.items():
            if n in self.last and elapsed.get(n, 0) > 0 and rx >= self.last[n][0] and tx >= self.last[n][1]:
                self.rates[n] = (round((rx - self.last[n][0]) * 8 / elapsed[n]), round((tx - self.last[n][1]) * 8 / elapsed[n]))
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
        summary = self.summary(when)
        new_alerts = self.ledger.alerts_due(summary, self.cfg["alert_thresholds_percent"], when)
        for a in new_alerts:
            log.warning("cap alert: %s%% of the cap used (%.2f GB)", a["percent"], a["used_bytes"] / 1e9)
        if (new_alerts or first_reading or self.ledger.urgent or when.date() != self._day
                or t - self._flushed_at >= FLUSH_S):
            self._day = when.date()
            self.flush(t, when)
        self.write_live(when, summary)

    def summary(self, when):
        return cycles.cycle_summary(self.ledger.data, self.adjustments.read(), self.cfg, when, self.topups.read())

    def flush(self, t, when):
        """Checkpoint and totals go to disk together, so a crash never loses or doubles bytes."""
        self.ledger.urgent = False
        self.ledger.checkpoint({**self.last, **self.routers.counters()}, t, when)
        self.ledger.prune(when.date())
        self.ledger.data["updated_at"] = when.isoformat(timespec="seconds")
        self.ledger.data["counted"] = self.counting()
        try:
            store.write_json_atomic(self.usage_path, self.ledger.data)
            if self._backup_at is None or t - self._backup_at >= BACKUP_S:
                store.write_json_atomic(self.usage_path.with_name("usage.json.bak"), self.ledger.data)
                self._backup_at = t
            self._flushed_at = t
            self.last_error = None
        except OSError as exc:  # disk full / read-only: the old file stays intact, retry next tick
            self.last_error = f"cannot write {self.usage_path.name}: {exc.strerror or exc}"
            log.error(self.last_error)
            if self._flushed_at is None:
                self._flushed_at = t

    def write_live(self, when, summary, status="running"):
        ifaces = {}
        for n, (rx, tx) in sorted(self.last.items()):
            rx_bps, tx_bps = self.rates.get(n, (None, None))
            ifaces[n] = {"rx_bytes": rx, "tx_bytes": tx, "rx_bps": rx_bps, "tx_bps": tx_bps,
                         "counted": n in self.counted, "present": self.seen.get(n) == self._prev_t}
        live = {"status": status, "pid": os.getpid(), "updated_at": when.isoformat(timespec="milliseconds"),
                "interval_seconds": self.cfg["update_interval_seconds"], "counted": self.counting(),
                "sources": self.routers.statuses("This computer (" + (", ".join(self.counted) or "no interface") + ")"),
                "interfaces": ifaces, "cycle_used_bytes": summary["used_bytes"], "last_error": self.last_error,
                "ledger_flushed_at": self.ledger.data.get("updated_at"),
                # the cycle's days as counted this instant: every reader's source for "cycle used"
                "days": cycles.days_of_cycle(self.ledger.data["days"], summary["previous_start"] or summary["start"]),
                "free": cycles.days_of_cycle(self.ledger.data.get("free", {}), summary["start"]),
                "monitoring_since": self.ledger.data.get("monitoring_since"), "totals": self.ledger.data["totals"]}
        try:
            try:
                store.write_json_atomic(self.live_path, live, fsync=False)  # live data, not the ledger
            except FileNotFoundError:  # someone cleaned the tmpfs folder: make it again
                self.live_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                store.write_json_atomic(self.live_path, live, fsync=False)
        except OSError as exc:
            log.error("cannot write %s: %s", self.live_path, exc)


def run(c, interval_override, config_path, data_dir):
    """The process loop: signals, the parent's death, a tick every interval; flush on the way out."""
    signals = process.SignalQueue()
    heartbeat = process.Heartbeat(data_dir, "collector")
    interval = interval_override or c.cfg["update_interval_seconds"]
    c.start()
    log.info("counting %s every %gs into %s", ", ".join(c.counted) or "(no interface yet)", interval, data_dir)
    next_tick = time.monotonic() + interval
    while True:
        heartbeat.beat()
        sigs = signals.drain()
        if any(s in (signal.SIGTERM, signal.SIGINT) for s in sigs) or process.parent_gone():
            break
        if signal.SIGHUP in sigs:
            c.reload(process.reload_config(config_path, c.cfg, log))
            interval = interval_override or c.cfg["update_interval_seconds"]
        if time.monotonic() >= next_tick:
            c.tick()
            next_tick += interval
            if next_tick < time.monotonic():  # we fell behind (suspend): do not burst
                next_tick = time.monotonic() + interval
        time.sleep(max(0.0, min(0.5, next_tick - time.monotonic())))
    c.tick()
    c.routers.stop()
    c.flush(c.clock(), c.now())
    c.write_live(c.now(), c.summary(c.now()), status="stopped")
    log.info("stopped; ledger flushed")
