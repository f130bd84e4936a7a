"""Spawn, signal, reap and restart the two children, the way supervisor and gunicorn do."""
import enum
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from config import EXIT_BAD_CONFIG

log = logging.getLogger("supervisor")

HERE = Path(__file__).resolve().parent
STOP_TIMEOUT = 5.0  # SIGTERM, then SIGKILL after this long
START_SECS = 3.0  # a child that dies sooner failed to start
MAX_FAST_FAILURES = 5  # then FATAL
BACKOFF_MAX = 30.0
STDERR_LINES_KEPT = 20
CHILD_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP}


class State(enum.Enum):
    STOPPED = "stopped"  # never started
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"  # ended by itself (downloader) or after stop()
    BACKOFF = "backoff"  # waiting to be restarted
    FATAL = "fatal"  # gave up restarting


def describe_exit(code):
    if code is None:
        return None
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Child:
    """One child process and its state; every change goes through _set_state()."""

    def __init__(self, name, argv, autorestart, clock=time.monotonic, popen=subprocess.Popen):
        self.name, self.argv, self.autorestart = name, argv, autorestart
        self.clock, self.popen = clock, popen
        self.state = State.STOPPED
        self.proc = None
        self.started_at = None
        self.restarts = 0
        self.fast_failures = 0
        self.retry_at = None
        self.stop_deadline = None
        self.exit_code = None
        self.paused = False
        self.stderr_tail = deque(maxlen=STDERR_LINES_KEPT)

    def _set_state(self, state):
        if state is not self.state:
            log.info("%s: %s -> %s", self.name, self.state.value, state.value)
            self.state = state

    @property
    def alive(self):
        return self.state in (State.STARTING, State.RUNNING, State.STOPPING)

    def spawn(self, extra_args=()):
        env = dict(os.environ, DATACAP_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1")
        self.stderr_tail.clear()
        # The child inherits this thread's signal mask: our signals stay pending until it has handlers.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, CHILD_SIGNALS)
        try:
            self.proc = self.popen([sys.executable, str(HERE / f"{self.name}.py"), *self.argv, *extra_args],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=env, cwd=str(HERE), start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if getattr(self.proc, "stderr", None) is not None:
            threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True,
                             name=f"{self.name}-stderr").start()
        self.started_at = self.clock()
        self.exit_code = self.stop_deadline = self.retry_at = None
        self.paused = False
        self._set_state(State.STARTING)  # STOPPED/EXITED/BACKOFF -> STARTING

    def _pump_stderr(self, stream):
        """Forward the child's log lines to ours (journald) and keep the last few for the API."""
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                print(line, file=sys.stderr, flush=True)
        stream.close()

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return True
        return False

    def stop(self):
        if self.alive and self.state is not State.STOPPING:
            self.signal(signal.SIGTERM)
            self.stop_deadline = self.clock() + STOP_TIMEOUT
            self._set_state(State.STOPPING)  # STARTING/RUNNING -> STOPPING
        elif self.state is State.BACKOFF:
            self._set_state(State.EXITED)  # BACKOFF -> EXITED: no restart

    def tick(self):
        """Reap, promote, escalate a slow stop, restart after back-off."""
        now = self.clock()
        code = self.proc.poll() if self.proc is not None and self.alive else None
        if code is not None:
            self._reaped(code, now)
        elif self.state is State.STARTING and now - self.started_at >= START_SECS:
            self.fast_failures = 0
            self._set_state(State.RUNNING)  # STARTING -> RUNNING
        elif self.state is State.STOPPING and now >= self.stop_deadline:
            log.warning("%s did not stop in %.0f s; sending SIGKILL", self.name, STOP_TIMEOUT)
            self.signal(signal.SIGKILL)
            self.stop_deadline = now + STOP_TIMEOUT
        elif self.state is State.BACKOFF and now >= self.retry_at:
            self.restarts += 1
            self.spawn()

    def _reaped(self, code, now):
        self.exit_code = code
        self.paused = False
        stopping = self.state is State.STOPPING
        log.log(logging.INFO if stopping or code == 0 else logging.ERROR, "%s (pid %s) ended: %s",
                self.name, self.proc.pid, describe_exit(code))
        if stopping or not self.autorestart:
            self._set_state(State.EXITED)  # STOPPING/RUNNING -> EXITED
            return
        if code == EXIT_BAD_CONFIG:
            self._set_state(State.FATAL)  # cannot start: bad config or data dir in use
            return
        if now - self.started_at < START_SECS:
            self.fast_failures += 1
        if self.fast_failures >= MAX_FAST_FAILURES:
            self._set_state(State.FATAL)  # STARTING -> FATAL
            return
        delay = min(BACKOFF_MAX, 2.0 ** self.fast_failures) if self.fast_failures else 1.0
        self.retry_at = now + delay
        self._set_state(State.BACKOFF)  # RUNNING -> BACKOFF

    def snapshot(self):
        running = self.alive and self.proc is not None
        return {
            "state": self.state.value, "pid": self.proc.pid if running else None,
            "uptime_seconds": round(self.clock() - self.started_at, 1) if running else None,
            "restarts": self.restarts, "paused": self.paused, "exit": describe_exit(self.exit_code),
            "retry_in_seconds": round(max(0.0, self.retry_at - self.clock()), 1) if self.state is State.BACKOFF else None,
            "last_error": self.last_error(),
        }

    def last_error(self):
        """The child's last error line, from what it printed on stderr."""
        for line in reversed(self.stderr_tail):
            if (" ERROR " in line or " CRITICAL " in line or "Error" in line or "error:" in line
                    or line.startswith(f"{self.name}: ")):  # our plain "cannot start" lines
                return line
        return self.stderr_tail[-1] if self.stderr_tail and self.state is State.FATAL else None


class Supervisor:
    """The collector (kept alive) and the downloader (on demand), under one lock."""

    def __init__(self, config_path, data_dir, clock=time.monotonic, popen=subprocess.Popen):
        common = ["--config", str(config_path), "--data-dir", str(data_dir)]
        self.collector = Child("collector", common, autorestart=True, clock=clock, popen=popen)
        self.downloader = Child("downloader", common, autorestart=False, clock=clock, popen=popen)
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            self.collector.spawn()

    def tick(self):
        with self.lock:
            self.collector.tick()
            self.downloader.tick()

    def control(self, action, extra_args=()):
        """Start/pause/resume/stop the downloader: (True, new status) or (False, why not)."""
        d = self.downloader
        with self.lock:
            d.tick()  # act on the freshest process state
            if action == "start":
                if d.alive:
                    return False, "a test is already running; stop it first"
                d.spawn(extra_args)
                return True, "running"
            if not d.alive or d.state is State.STOPPING:
                return False, f"no test is running, so there is nothing to {action}"
            if action == "pause":
                if d.paused:
                    return False, "the test is already paused"
                d.signal(signal.SIGUSR1)
                d.paused = True
                return True, "paused"
            if action == "resume":
                if not d.paused:
                    return False, "the test is not paused"
                d.signal(signal.SIGUSR2)
                d.paused = False
                return True, "running"
            if action == "stop":
                d.stop()
                return True, "stopping"
        raise ValueError(action)

    def reload(self):
        """Children re-read config.json."""
        with self.lock:
            for c in (self.collector, self.downloader):
                if c.alive:
                    c.signal(signal.SIGHUP)

    def stop_all(self):
        """Stop both children: SIGTERM, wait, SIGKILL. Called by the server on exit."""
        with self.lock:
            for c in (self.downloader, self.collector):
                c.stop()
        deadline = time.monotonic() + STOP_TIMEOUT + 2
        while time.monotonic() < deadline:
            self.tick()
            if not (self.downloader.alive or self.collector.alive):
                return
            time.sleep(0.05)

    def snapshot(self):
        with self.lock:
            return {"collector": self.collector.snapshot(), "downloader": self.downloader.snapshot()}
