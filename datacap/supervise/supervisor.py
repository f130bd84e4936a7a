"""The collector (kept alive) and the downloader (on demand), under one lock, like supervisor and gunicorn."""
import contextlib
import signal
import subprocess
import threading
import time
from pathlib import Path

from datacap import store
from datacap.measure import session_file
from datacap.supervise.child import STOP_TIMEOUT, Child
from datacap.supervise.states import State
from datacap.supervise.probe_schedule import ProbeRunner


def heartbeat_of(path):
    """A child's heartbeat: the mtime of the file it touches every loop, None before the first."""
    def read():
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None
    return read


class Supervisor:
    """Start/stop/pause/resume the downloader, keep the collector alive; tick() does all process work."""

    def __init__(self, config_path, data_dir, clock=time.monotonic, popen=subprocess.Popen):
        config_path, data_dir = Path(config_path), Path(data_dir)
        common = ["--config", str(config_path), "--data-dir", str(data_dir)]
        live = store.runtime_dir(data_dir)
        self.collector = Child("collector", common, autorestart=True, clock=clock, popen=popen,
                               heartbeat=heartbeat_of(live / "collector.heartbeat"))
        self.downloader = Child("downloader", common, autorestart=False, clock=clock, popen=popen,
                                heartbeat=heartbeat_of(live / "downloader.heartbeat"))
        self.downloader_lock = store.InstanceLock(data_dir, "downloader")
        self.probes = ProbeRunner(common, config_path, data_dir, clock=clock, popen=popen)
        self.data_dir = data_dir
        self.lock = threading.Lock()
        self.closing = False
        self._forget_on_exit = False  # a Reset came while the ended downloader was still exiting
        self._published = self._snapshot()

    def start(self):
        with self._turn():
            self.collector.spawn()

    def tick(self):
        with self._turn():
            self.collector.tick()
            self.downloader.tick()
            if self._forget_on_exit and not self.downloader.alive:
                self._forget_on_exit = False
                for path in session_file.paths(self.data_dir):
                    path.unlink(missing_ok=True)
            self.probes.tick(self.downloader.alive or self.downloader.state is State.BACKOFF,
                             lambda: self.downloader_lock.holder() is not None, self.closing)

    def control(self, action, extra_args=()):
        """Start/pause/resume/stop the downloader: (True, new status) or (False, why not)."""
        d = self.downloader
        with self._turn():
            if self.closing:
                return False, "datacap is shutting down"
            d.tick()  # act on the freshest process state
            if action == "start":
                self.probes.stop()  # a test needs the whole link; the probe's bytes are still recorded
                return self._start(d, extra_args)
            if not d.alive or d.state is State.STOPPING:
                return False, f"no test is running, so there is nothing to {action}"
            if action == "pause":
                if d.paused:
                    return False, "the test is already paused"
                d.signal(signal.SIGUSR1)
                d.paused = True
                return True, session_file.Status.PAUSED.value
            if action == "resume":
                if not d.paused:
                    return False, "the test is not paused"
                d.signal(signal.SIGUSR2)
                d.paused = False
                return True, session_file.Status.RUNNING.value
            if action == "stop":
                d.stop()
                return True, session_file.Status.STOPPING.value
        raise ValueError(action)

    def _start(self, d, extra_args):
        if d.alive or d.state is State.BACKOFF:
            return False, "a test is already running; stop it first"
        if self.downloader_lock.holder() is not None:
            return False, (f"another downloader {self.downloader_lock.holder_text()} is already testing with "
                           "this data folder; stop it first")
        self._forget_on_exit = False
        if not d.spawn(extra_args):
            return False, d.spawn_error
        return True, session_file.Status.CONNECTING.value

    def reload(self):
        """Children re-read config.json; a collector that gave up (bad config) gets another chance."""
        with self._turn():
            for c in (self.collector, self.downloader):
                if c.alive:
                    c.signal(signal.SIGHUP)
            if self.collector.state is State.FATAL and not self.closing:
                self.collector.fast_failures = 0
                self.collector.restarts += 1
                self.collector.spawn()  # FATAL -> STARTING
            self.probes.reload()

    def stop_all(self):
        """Refuse new work, then stop both children: SIGTERM, wait, SIGKILL. Called once on exit."""
        with self._turn():
            self.closing = True
            for c in (self.downloader, self.probes.child, self.collector):
                c.stop()
        deadline = time.monotonic() + 2 * STOP_TIMEOUT + 2
        while time.monotonic() < deadline:
            self.tick()
            if not (self.downloader.alive or self.probes.child.alive or self.collector.alive):
                return
            time.sleep(0.05)

    def forget_session_on_exit(self):
        """Reset while the ended downloader exits: remove its files again once it has gone."""
        with self._turn():
            self._forget_on_exit = True

    def probe_status(self):
        with self._turn():
            return self.probes.status()

    @contextlib.contextmanager
    def _turn(self):
        """The lock; leaving it publishes the processes' state for snapshot(), which never waits for it:
        fifty polling dashboards must not queue behind a tick that is waiting for a child."""
        with self.lock:
            try:
                yield
            finally:
                self._published = self._snapshot()

    def snapshot(self):
        """The children's state as of the last tick or action (a fifth of a second old at most, serve.TICK_S)."""
        return self._published

    def _snapshot(self):
        return {"collector": self.collector.snapshot(), "downloader": self.downloader.snapshot()}
