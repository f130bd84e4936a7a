"""One test session: stream from test URLs, measure speed, detect throttling; the writer of downloader.json.

Signals: TERM/INT stop, USR1 pause, USR2 resume, HUP reload config (a new threshold applies at once).
The line rests (streams paused, the test's clock stopped) when the refill check asks (measure/refill.py).
"""
import logging
import os
import signal
import time
import uuid
from collections import deque
from datetime import datetime, timezone

from datacap import process, store
from datacap.measure import errors, session_file
from datacap.measure import history as kept_tests
from datacap.measure.cap_guard import CapGuard
from datacap.measure.session_file import Status as State
from datacap.measure.speed import SpeedMeter, mbps
from datacap.measure.streams import StreamPool
from datacap.usage import lines
from datacap.measure.monitor import LinkMonitor

from datacap.measure.per_stream import PerStreamMeter
log = logging.getLogger("downloader")

TICK_S = 0.1
SAMPLES_KEPT = 600  # 1-s points in data_points
HISTORY_KEPT = 720  # coarse points for the whole session; resolution halves when full
SYNC_S = 60.0  # fsync at least this often; always on a state change or a throttle event


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


class Downloader:
    """One session: a state machine driven by tick(), a StreamPool doing the I/O."""

    def __init__(self, cfg, data_dir, urls=None, streams=None, limit_gb=None,
                 clock=time.monotonic, wall=time.time, pool=None, config_path=None, line=None):
        self.cfg = cfg
        self.line = lines.for_tests(cfg, line)  # the connection the test runs over: its cap, its counter
        self.config_path = config_path
        self.data_dir = data_dir
        self.path = data_dir / session_file.NAME
        self.live_path = store.runtime_dir(data_dir, create=True) / session_file.NAME
        self.save_error = None
        self.clock, self.wall = clock, wall
        self.urls = list(urls or cfg["test_urls"])
        limit = limit_gb if limit_gb is not None else cfg["session_limit_gb"]
        self.limit_bytes = int(limit * 1e9) if limit else None
        self.pool = pool or StreamPool(self.urls, streams or cfg["streams"], self.limit_bytes,
                                       device=lines.device_of(self.line) if cfg["lines"] else None)
        self.state = State.CONNECTING  # until the first bytes arrive
        self.reason = None
        self.meter = SpeedMeter()
        self.detector = LinkMonitor(cfg["throttle_threshold_percent"], cfg["baseline_seconds"], iso)
        self.per_stream = PerStreamMeter(self.pool.n)
        self.samples = deque(maxlen=SAMPLES_KEPT)
        self.history = []
        self.history_step = 10
        self.session_id = uuid.uuid4().hex[:12]
        self.started_wall = wall()
        self.active_s = 0.0
        self._last_clock = clock()
        self._last_write = None
        self._last_sync = None
        self._synced_events = None  # (state, event count, last end) at the last fsync
        self.cap = CapGuard(data_dir, self.started_wall)
        self.cycle_gb_at_start = self._cycle_gb()
        self._kept = False  # the finished test is in history.json
        self.rest_until = None  # (monotonic end, seconds) of a rest the refill check asked for

    def _set_state(self, state, reason=None):
        log.info("%s -> %s%s", self.state.value, state.value, f" ({reason})" if reason else "")
        self.state, self.reason = state, reason
        self.write()

    # -- signals -------------------------------------------------------------
    def handle(self, signum):
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stop(State.STOPPED, "stopped by user")
        elif signum == signal.SIGUSR1 and self.state in (State.RUNNING, State.CONNECTING):
            self.pool.pause()
            self._set_state(State.PAUSED)  # RUNNING -> PAUSED
        elif signum == signal.SIGUSR2 and self.state is State.PAUSED:
            self.meter.restart_warmup()
            self._last_clock = self.clock()
            self.per_stream.restart()
            if self.rest_until is None:  # else the line rests on until the rest is over
                self.pool.resume()
            self._set_state(State.RUNNING if self.pool.total_bytes() else State.CONNECTING)  # PAUSED -> RUNNING
        elif signum == signal.SIGHUP:
            self.cfg = process.reload_config(self.config_path, self.cfg, log)
            self.line = lines.by_name(self.cfg, self.line.name) or self.line  # its cap may have changed
            self.detector.set_threshold(self.cfg["throttle_threshold_percent"])

    def stop(self, state, reason):
        if self.state in (State.CONNECTING, State.RUNNING, State.PAUSED):
            self.pool.stop()
            self.rest_until = None
            self.detector.finish()
            self._set_state(state, reason)  # RUNNING/PAUSED -> STOPPED/FINISHED/ERROR

    @property
    def done(self):
        return self.state in (State.STOPPED, State.FINISHED, State.ERROR)

    # -- the loop ------------------------------------------------------------
    def tick(self):
        """Sample counters, close bins, feed the detector, enforce limits, write the file."""
        now = self.clock()
        if self.rest_until is not None and now >= self.rest_until[0]:
            self._end_rest()
        if self.state in (State.RUNNING, State.CONNECTING) and self.rest_until is None:
            self.active_s += now - self._last_clock
            backoff = self.pool.in_backoff()
            if backoff:  # a silent stream is not a failure: slow links have them
                self.meter.mark_unhealthy()
            total = self.pool.total_bytes()
            self.per_stream.sample(self.active_s, self.pool.counts, usable=not backoff)
            for b in self.meter.add(self.active_s, total, self.wall()):
                self.detector.feed(b, iso)
                self._record_point(b)
            if self.state is State.CONNECTING and total:
                self._set_state(State.RUNNING)  # CONNECTING -> RUNNING: the first bytes arrived
            self._mark_cycle(total)
            self._enforce_limits(total, now)
            if self.detector.rest_wanted and not self.done:
                self._start_rest(now)
        self._last_clock = now
        interval = self.cfg["update_interval_seconds"]
        if self._last_write is None or now - self._last_write >= interval:
            self.write()

    def _start_rest(self, now):
        """Rest the line so a speed boost's bucket can fill again (measure/refill.py)."""
        seconds = self.detector.rest_wanted
        self.detector.resting()
        self.pool.pause()
        self.rest_until = (now + seconds, seconds)
        log.info("resting the line for %d s: does the fast rate come back?", seconds)
        self.write()

    def _end_rest(self):
        self.rest_until = None
        if self.state is State.RUNNING:  # paused by the user meanwhile: Resume starts the streams
            self.meter.restart_warmup()
            self.per_stream.restart()
            self.pool.resume()
        log.info("rest over: measuring again")

    def _rest_fields(self):
        if self.rest_until is None:
            return None
        end, seconds = self.rest_until
        return {"seconds": seconds, "left_s": round(max(0.0, end - self.clock()), 1),
                "why": self.detector.refill.text()}

    def _mark_cycle(self, total):
        """A throttle event also says where it was in the billing cycle (the collector's count, one owner)."""
        for ev in self.detector.events:
            if "at_cycle_gb" not in ev and isinstance(ev.get("at_bytes"), int):
                used = self.cap.cycle.summary(self.cfg, datetime.now().astimezone(), self.line)["used_bytes"]
                ev["at_cycle_gb"] = round(max(0, used - (total - ev["at_bytes"])) / 1e9, 4)

    def _record_point(self, b):
        point = {"t": b.index, "time": iso(b.wall_start), "mbps": round(mbps(b.bytes), 3),
                 "bytes": b.start_bytes + round(b.bytes)}
        self.samples.append(point)
        if b.index % self.history_step == 0:
            self.history.append(point)
            if len(self.history) >= HISTORY_KEPT:  # halve the resolution, keep the whole session
                self.history = self.history[::2]
                self.history_step *= 2

    def _enforce_limits(self, total, now):
        if self.limit_bytes and total >= self.limit_bytes:
            self.stop(State.FINISHED, f"session limit of {self.limit_bytes / 1e9:g} GB reached")
        elif self._outage_over_limit(now):
            errs = self._url_errors()
            minutes = self.cfg["outage_give_up_minutes"]
            why = ("; ".join(f"{e['url']}: {e['what']}" for e in errs)
                   or (self.pool.last_error or {}).get("message") or "no answer")
            self.stop(State.ERROR, f"no bytes from any test URL for {minutes:g} min ({why})")
        elif self.line.stop_at_cap and self.cap.reached(self.cfg, total, self.wall(), now, self.line):
            self.stop(State.FINISHED, "the prepaid bucket has expired" if self.cap.stop["expired"]
                      else "data cap reached for this billing cycle")

    def _outage_over_limit(self, now):
        """An outage is ridden out (the streams retry with back-off) for outage_give_up_minutes."""
        since = self.pool.failing_since()
        return since is not None and now - since > self.cfg["outage_give_up_minutes"] * 60

    # -- errors in words, the cycle figure, the kept result ---------------------
    def _url_errors(self, every=False):
        errs = getattr(self.pool, "url_errors", None)  # measure/errors.py UrlErrors
        return [] if errs is None else errs.all() if every else errs.recent()

    def _error_fields(self, total):
        """Each URL's recent failure in words; the raw exception is only in the log."""
        recent = self._url_errors()
        failing = total == 0 or self.detector.outage_open
        last = {"time": recent[0]["time"], "url": recent[0]["url"], "message": recent[0]["what"]} if recent else None
        return {"last_error": last, "url_errors": recent,
                "problem": errors.problem(recent, self.urls, not failing) if self.state is not State.PAUSED else None}

    def _cycle_gb(self):
        """The billing cycle's usage now, from the collector's count (usage/current.py, the one owner)."""
        return round(self.cap.cycle.summary(self.cfg, datetime.now().astimezone(), self.line)["used_bytes"] / 1e9, 4)

    def _keep(self, snap):
        """The ended test joins history.json (measure/history.py), once."""
        self._kept = True
        snap = {**snap, "url_errors": self._url_errors(every=True)}
        try:
            kept_tests.append(self.data_dir, kept_tests.record(snap, iso(self.wall()), self.cycle_gb_at_start,
                                                               self._cycle_gb()))
        except (OSError, TimeoutError) as exc:  # filelock.Timeout is a TimeoutError
            log.error("cannot keep the test in %s: %s", kept_tests.NAME, exc)

    def snapshot(self):
        total = self.pool.total_bytes()
        event = self.detector.open_event
        base = self.detector.baseline_bps
        return {
            "status": self.state.value, "reason": self.reason, "pid": os.getpid(),
            "session_id": self.session_id, "session_start": iso(self.started_wall),
            "updated_at": iso(self.wall()), "update_interval_seconds": self.cfg["update_interval_seconds"],
            "speed_mbps": round(mbps(self.meter.rate_bps()), 3)
            if self.state is State.RUNNING and self.rest_until is None else 0.0,
            "resting": self._rest_fields(),
            "avg_speed": round(mbps(total / self.active_s), 3) if self.active_s > 0 else 0.0,
            # the fastest closed second; bytes before the first bin closes count in the average only,
            # so the peak is never shown below the average (a test of a few seconds)
            "peak_speed": round(mbps(max(self.meter.peak_bps, total / self.active_s if self.active_s > 0 else 0)), 3),
            "baseline_speed": round(mbps(base), 3) if base is not None else None,
            "total_bytes": total, "total_gb": round(total / 1e9, 4),
            "session_duration": round(self.active_s, 1),
            "throttle_detected": event is not None, "throttle_events": self.detector.events,
            "events": self.detector.all_events, "outage": self.detector.outage_open,
            "stream_speeds_mbps": self.per_stream.speeds_mbps(),
            "per_connection_mbps": self.per_stream.per_connection_mbps(),
            "streams": self.pool.n, "urls": self.urls, "limit_bytes": self.limit_bytes,
            "stop_at_cap": self.line.stop_at_cap, "threshold_percent": self.cfg["throttle_threshold_percent"],
            "cap_stop": self.cap.stop, "line": self.line.name if self.cfg["lines"] else None,
            **self._error_fields(total), "error_count": self.pool.error_count,
            "data_points": list(self.samples), "history": self.history,
        }

    def _durable_mark(self):
        events = self.detector.all_events
        return self.state, len(events), events[-1]["end"] if events else None

    def _durable_due(self, now):
        """Readers never need data/ (the live copy is in tmpfs); durability does, on what matters."""
        return self._durable_mark() != self._synced_events or self._last_sync is None or now - self._last_sync >= SYNC_S

    def write(self):
        """The live copy every interval (tmpfs); the durable one in data/ on a change that matters and
        once a minute. A durable copy that cannot be saved is an error the live copy carries."""
        snap = self.snapshot()
        if self.done and not self._kept:
            self._keep(snap)
        now = self.clock()
        durable = self._durable_due(now)
        if durable:
            snap["save_error"] = None
            try:
                store.write_json_atomic(self.path, snap)
                self._synced_events, self._last_sync, self.save_error = self._durable_mark(), now, None
            except OSError as exc:  # disk full or read-only: keep measuring, retry next tick
                self.save_error = f"cannot save {self.path.name}: {exc.strerror or exc}"
                log.error(self.save_error)
        snap["save_error"] = self.save_error
        if self.live_path != self.path or not durable:  # no tmpfs: the live copy is data/'s, unsynced
            try:
                store.write_json_atomic(self.live_path, snap, fsync=False)
            except OSError as exc:
                log.error("cannot write %s: %s", self.live_path, exc)
        self._last_write = now


def run(d, data_dir):
    """The process loop: signals, the parent's death, ticks; returns the exit code."""
    signals = process.SignalQueue()
    heartbeat = process.Heartbeat(data_dir, "downloader")
    log.info("session %s: %d streams from %s", d.session_id, d.pool.n, ", ".join(d.urls))
    d.pool.start()
    d.write()
    while not d.done:
        heartbeat.beat()
        for signum in signals.drain():
            d.handle(signum)
        if process.parent_gone():
            d.stop(State.STOPPED, "server went away")
        if not d.done:
            d.tick()
        time.sleep(TICK_S)
    log.info("session %s ended: %s, %.3f GB", d.session_id, d.reason, d.pool.total_bytes() / 1e9)
    return 1 if d.state is State.ERROR else 0
