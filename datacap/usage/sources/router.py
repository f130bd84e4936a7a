"""What every router source shares: polling on a background event loop, quirks, and its status.

A router's counters are read over the network (SNMP, UPnP) on one asyncio loop in a daemon thread,
each source every `interval_seconds`; the collector's tick takes the readings that arrived since.
Readings that cannot be traffic are dropped here and noted: a counter stuck at its maximum, a
counter that reads 0 while the router did not restart. A router that stops answering pauses its
count; the ledger fills the gap from the counters when it answers again. A router restarted when
its uptime is less than it was plus the time since (the collector's own restarts included: the
last reading is seeded from the ledger's checkpoint).
"""
import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

log = logging.getLogger("collector")

U32_MAX = (1 << 32) - 1
UPTIME_SLACK_S = 30.0  # a router's uptime and our clock disagree by this much before it counts as a restart


@dataclass
class Reading:
    rx: int
    tx: int
    t: float  # the collector's clock when it was read
    wide: bool  # 64-bit counters
    link_bps: float = None  # the WAN's bytes/s as the router states it, None when unknown
    restarted: bool = False  # the router rebooted since the last reading
    uptime: float = None  # the router's (or its WAN connection's) uptime in seconds, None when unknown


class Loop:
    """One asyncio loop in a daemon thread for every router source of the collector."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="router-sources", daemon=True)
        self._thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout=3.0):
        """Cancel the polls, let them end, stop the loop and close it: nothing left pending."""
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout)
        except Exception:  # noqa: BLE001 - a poll that will not end: stop anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self.loop.is_running():
            self.loop.close()


class RouterSource:
    """Base of snmp/upnp: subclasses implement `async read()` -> (rx, tx, wide, uptime s, link bytes/s), None
    for what the router does not say."""

    kind = "router"
    line = None  # the line it counts toward (the feed sets it), None while it is only shown

    def __init__(self, spec, counts, clock=time.monotonic):
        self.spec, self.counts, self.clock = spec, counts, clock
        self.interval_s = float(spec.get("interval_seconds", 5))
        self._fresh = []  # readings not yet taken, replaced whole (thread-safe swap)
        self._notes = []  # (reason, detail) counter events not yet taken
        self._last = None  # (rx, tx, uptime, t) of the last good reading
        self._quirk = None  # the quirk being reported, so each episode is noted once
        self.last_success = self.last_error = None
        self.failures = 0
        self._task = None

    @property
    def name(self):
        """The counter's name in the ledger and the API."""
        return f"{self.kind}:{self.target}"

    def seed(self, rx, tx, uptime, t):
        """The last reading before a restart of ours (the ledger's checkpoint), to judge the next one against."""
        self._last = (rx, tx, uptime, t)

    def start(self, loop):
        self._task = loop.submit(self._run())

    async def _run(self):
        while True:
            await self._poll_once()
            await asyncio.sleep(self.retry_s())

    def retry_s(self):
        """Seconds to the next poll: the interval, backing off to a minute while the router fails."""
        return self.interval_s if not self.failures else min(60.0, self.interval_s * 2 ** self.failures)

    async def _poll_once(self):
        try:
            rx, tx, wide, uptime, link_bps = await asyncio.wait_for(self.read(), timeout=max(3.0, self.interval_s))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a router is its status, never our crash
            self.failures += 1
            message = str(exc) or type(exc).__name__
            if self.failures == 1:
                log.warning("%s: %s (counting paused until it answers)", self.label(), message)
            self.last_error = {"time": _now(), "message": message[:200]}
            return
        if self.failures:
            log.info("%s answers again", self.label())
        self.failures = 0
        reading = self._judge(rx, tx, wide, uptime, link_bps)
        if reading is not None:
            self._fresh = self._fresh + [reading]
            self.last_success = _now()

    def _restarted(self, uptime, t):
        if uptime is None or self._last is None or self._last[2] is None:
            return False
        since = t - self._last[3] if self._last[3] is not None else 0.0
        return uptime + UPTIME_SLACK_S < self._last[2] + since

    def _judge(self, rx, tx, wide, uptime, link_bps):
        """A Reading, or None for one that cannot be traffic (noted once per episode)."""
        notes, t = [], self.clock()
        if rx < 0 or tx < 0:  # a signed 32-bit value from a router that should send ui4
            rx, tx = rx % (1 << 32), tx % (1 << 32)
            if self._quirk != "signed":
                notes.append(("signed", "the router sent a negative counter; read as unsigned 32-bit"))
        restarted = self._restarted(uptime, t)
        quirk = None
        if not wide and U32_MAX in (rx, tx):
            quirk = ("stuck", f"a counter reads {U32_MAX} (stuck at its maximum): not counted")
        elif self._last is not None and not restarted and ((rx == 0 < self._last[0]) or (tx == 0 < self._last[1])):
            quirk = ("zero", "a counter read 0 although the router did not restart: not counted")
        if quirk:
            if self._quirk != quirk[0]:
                self._notes = self._notes + [quirk]
            self._quirk = quirk[0]
            return None
        self._quirk = "signed" if notes else None
        self._last = (rx, tx, uptime, t)
        if restarted:
            notes.append(("router_restart", "the router restarted: its counters start again from zero"))
        self._notes = self._notes + notes
        return Reading(rx, tx, t, wide, link_bps, restarted, uptime)

    def take(self):
        """(readings, notes) since the last call, oldest first."""
        fresh, self._fresh = self._fresh, []
        notes, self._notes = self._notes, []
        return fresh, notes

    def status(self):
        return {"type": self.kind, "target": self.target, "name": self.name, "counted": self.counts,
                "label": self.label(), "status": "failing" if self.failures else ("ok" if self.last_success else "starting"),
                "last_success": self.last_success, "last_error": self.last_error,
                "poll_interval_seconds": self.interval_s}


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
