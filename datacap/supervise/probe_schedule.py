"""When a speed probe may run, and the probe child the supervisor starts for it.

A probe runs every `probe_interval_minutes` (null: never), and only when nothing else is going
on: no test (ours or one run by hand), no outage (the counted interfaces are there and the
collector is counting), a link that has been quiet for QUIET_FOR_S (the collector's live download
rate below a tenth of the last known speed), and bytes left in this cycle's probe budget outside
the cap's last 2 %, paced so that each probe can settle (measure/probe/budget.py, which the child
checks again). The clocks are injectable.
"""
import logging
import time
from datetime import datetime, timedelta

from datacap import config as configmod
from datacap.measure.probe import budget
from datacap.measure.probe import file as probe_file
from datacap.supervise.child import Child
from datacap.supervise.states import State
from datacap.usage import cycles, lines, live_file
from datacap.usage.current import CycleReader

log = logging.getLogger("supervisor")

DECIDE_EVERY_S = 1.0  # the supervisor ticks every 0.2 s; the files change about once a second
QUIET_FOR_S = 3.0  # a gap between two bursts is not a quiet link
PROBE_RUNNING = "a probe is running"
KILL_AFTER_S = 60.0  # a probe stops itself within probe.MAX_SECONDS; this is the backstop


class ProbeSchedule:
    """decide(busy) -> bytes the probe may read now, or 0; `status` says why not."""

    def __init__(self, config_path, data_dir, clock=time.monotonic, now=cycles.local_now, load=configmod.load):
        self.config_path, self.data_dir, self.clock, self.now, self.load = config_path, data_dir, clock, now, load
        self.cfg = None
        self.reload()
        self.probes = probe_file.Reader(data_dir)
        self.cycle = CycleReader(data_dir)
        self.live = live_file.Reader(data_dir)
        self.quiet_since = None
        self._next_decision = None
        self.status = {"enabled": False, "state": "off", "why": "not checked yet", "next_probe_at": None,
                       "link_mbps": None, "quiet": None}

    def reload(self):
        try:
            self.cfg = self.load(self.config_path)
        except configmod.ConfigError as exc:  # the server has refused it too; keep what we had
            log.error("probe schedule keeps its settings: %s", exc)

    def _say(self, state, why, **extra):
        enabled = self.cfg is not None and self.cfg["probe_interval_minutes"] is not None
        self.status = {**self.status, "enabled": enabled, "state": state, "why": why, **extra}
        return 0

    def _link(self):
        """(download rate in bits/s or None, an outage reason or None), and the quiet clock kept."""
        rows = self.live.interfaces(self.cfg["update_interval_seconds"])
        counted = [r for r in rows["interfaces"] if r.get("counted")]
        rate = probe_file.link_rate_bps(counted)
        last = probe_file.last_speed_bps(self.probes.read())
        if rate is not None and probe_file.quiet(rate, last):
            self.quiet_since = self.quiet_since if self.quiet_since is not None else self.clock()
        else:
            self.quiet_since = None
        self.status["link_mbps"] = None if rate is None else round(rate / 1e6, 3)
        self.status["quiet"] = self.quiet_since is not None
        if rows["stale"]:
            return rate, "the collector is not counting (no fresh figures)"
        if not counted or not all(r.get("present", True) for r in counted):
            return rate, "outage: a counted interface is missing"
        return rate, None

    def decide(self, busy=lambda: None):
        """The number of bytes a probe may read if one should start now, else 0 (and status.why).

        busy() names what is running instead (a test, a probe), or None; it is asked only when deciding.
        """
        t = self.clock()
        if self._next_decision is not None and t < self._next_decision:
            return 0
        self._next_decision = t + DECIDE_EVERY_S
        if self.cfg is None:
            return self._say("off", "no usable config.json", next_probe_at=None)
        interval = self.cfg["probe_interval_minutes"]
        if interval is None:
            return self._say("off", "probes are off (probe_interval_minutes is null)", next_probe_at=None)
        rate, outage = self._link()
        running = busy()
        if running:
            return self._say("running" if running == PROBE_RUNNING else "waiting", running)
        now = self.now()
        doc = self.probes.read()
        if doc["probes"]:
            due = datetime.fromisoformat(doc["probes"][-1]["time"]) + timedelta(minutes=interval)
            self.status["next_probe_at"] = due.astimezone(now.tzinfo).isoformat(timespec="seconds")
            if now < due:
                return self._say("waiting", "waiting for the next interval")
        if outage or rate is None:
            return self._say("waiting", outage or "waiting for the collector's first rates")
        if self.quiet_since is None:
            return self._say("waiting", f"the link is busy ({rate / 1e6:.1f} Mbit/s of other traffic)")
        if t - self.quiet_since < QUIET_FOR_S:
            return self._say("waiting", "waiting for the link to stay quiet")
        summary = self.cycle.summary(self.cfg, now, lines.for_tests(self.cfg))
        allow, why = budget.allowance(self.cfg, summary, doc, now.timestamp())
        if not allow:
            return self._say("waiting", why)
        return allow


class ProbeRunner:
    """The probe child (`downloader.py --probe`) and its schedule; called under the supervisor's lock."""

    def __init__(self, common_argv, config_path, data_dir, clock=time.monotonic, popen=None, schedule=None):
        extra = {"popen": popen} if popen is not None else {}
        self.child = Child("downloader", [*common_argv, "--probe"], autorestart=False, clock=clock, **extra)
        self.schedule = schedule or ProbeSchedule(config_path, data_dir, clock=clock)
        self.clock = clock

    def tick(self, test_running, test_elsewhere, closing):
        """Reap the probe; start one when the schedule says so; stop one that overstays."""
        c = self.child
        c.tick()
        if c.alive and c.state is not State.STOPPING and self.clock() - c.started_at > KILL_AFTER_S:
            log.warning("probe ran for over %.0f s: stopping it", KILL_AFTER_S)
            c.stop()
        if closing:
            return

        def busy():
            if c.alive:
                return PROBE_RUNNING
            if test_running:
                return "a test is running"
            return "a test started by hand is running" if test_elsewhere() else None
        try:
            allow = self.schedule.decide(busy)
        except Exception as exc:  # noqa: BLE001  probes are an extra: they must never stop the supervisor
            why = f"probe schedule failed: {type(exc).__name__}: {exc}"
            if why != self.schedule.status.get("why"):
                log.exception(why)
            self.schedule.status.update(state="error", why=why)
            return
        if allow:
            log.info("starting a probe (up to %.1f MB)", allow / 1e6)
            if c.spawn(["--max-bytes", str(allow)]):
                self.schedule.status.update(state="running", why=PROBE_RUNNING)

    def stop(self):
        self.child.stop()

    def reload(self):
        self.schedule.reload()

    def status(self):
        return {**self.schedule.status, "running": self.child.alive}
