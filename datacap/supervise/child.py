"""One supervised child process: spawn, signal, reap, restart with back-off, kill when hung."""
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque

from datacap.config import EXIT_BAD_CONFIG, ROOT
from datacap.supervise.states import ALIVE, State

log = logging.getLogger("supervisor")

STOP_TIMEOUT = 5.0  # SIGTERM, then SIGKILL after this long
START_SECS = 3.0  # a child that dies sooner failed to start
MAX_FAST_FAILURES = 5  # then FATAL
BACKOFF_MAX = 30.0
HUNG_AFTER_S = 30.0  # a live process whose heartbeat has not moved this long is hung: kill it
STDERR_LINES_KEPT = 20
CHILD_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP}


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
    """One child process and its state; every change goes through _set_state().

    heartbeat() returns a value that changes while the child is alive and working (the mtime of
    its heartbeat file); one that stays the same for HUNG_AFTER_S means a stopped or hung process.
    """

    def __init__(self, name, argv, autorestart, clock=time.monotonic, popen=subprocess.Popen,
                 heartbeat=lambda: None):
        self.name, self.argv, self.autorestart = name, argv, autorestart
        self.clock, self.popen, self.heartbeat = clock, popen, heartbeat
        self.state = State.STOPPED
        self.proc = None
        self.started_at = None
        self.restarts = 0
        self.fast_failures = 0
        self.retry_at = None
        self.stop_deadline = None
        self.exit_code = None
        self.spawn_error = None
        self.hung = False
        self.paused = False
        self._beat = (None, None)  # (last heartbeat value, clock() when it last changed)
        self.stderr_tail = deque(maxlen=STDERR_LINES_KEPT)

    def _set_state(self, state):
        if state is not self.state:
            log.info("%s: %s -> %s", self.name, self.state.value, state.value)
            self.state = state

    @property
    def alive(self):
        return self.state in ALIVE

    def spawn(self, extra_args=()):
        env = dict(os.environ, DATACAP_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1")
        self.stderr_tail.clear()
        self.started_at = self.clock()
        self.exit_code = self.stop_deadline = self.retry_at = self.spawn_error = None
        self.paused = self.hung = False
        # The child inherits this thread's signal mask: our signals stay pending until it has handlers.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, CHILD_SIGNALS)
        try:
            self.proc = self.popen([sys.executable, str(ROOT / f"{self.name}.py"), *self.argv, *extra_args],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=env, cwd=str(ROOT), start_new_session=True)
        except OSError as exc:  # EAGAIN, ENOMEM, EMFILE: a failed start, never the server's end
            self.proc, self.spawn_error = None, f"cannot start {self.name}: {exc.strerror or exc}"
            log.error(self.spawn_error)
            self._failed(self.clock(), early=True)
            return False
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if getattr(self.proc, "stderr", None) is not None:
            threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True,
                             name=f"{self.name}-stderr").start()
        self._beat = (self.heartbeat(), self.started_at)
        self._set_state(State.STARTING)  # STOPPED/EXITED/BACKOFF -> STARTING
        return True

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
        """Reap, promote, kill a hung child, escalate a slow stop, restart after back-off."""
        now = self.clock()
        code = self.proc.poll() if self.proc is not None and self.alive else None
        if code is not None:
            self._reaped(code, now)
        elif self.state is State.STOPPING:
            if now >= self.stop_deadline:
                log.warning("%s did not stop in %.0f s; sending SIGKILL", self.name, STOP_TIMEOUT)
                self.signal(signal.SIGKILL)
                self.stop_deadline = now + STOP_TIMEOUT
        elif self.alive and self._hung(now):
            log.error("%s (pid %s) wrote no heartbeat for %.0f s: killing it", self.name, self.proc.pid, HUNG_AFTER_S)
            self.hung = True
            self.signal(signal.SIGKILL)  # reaped on a later tick, then restarted like a crash
        elif self.state is State.STARTING and now - self.started_at >= START_SECS:
            self.fast_failures = 0
            self._set_state(State.RUNNING)  # STARTING -> RUNNING
        elif self.state is State.BACKOFF and now >= self.retry_at:
            self.restarts += 1
            self.spawn()

    def _hung(self, now):
        beat = self.heartbeat()
        if beat != self._beat[0]:
            self._beat = (beat, now)
            return False
        return beat is not None and now - self._beat[1] >= HUNG_AFTER_S

    def _reaped(self, code, now):
        self.exit_code = code
        self.paused = False
        stopping = self.state is State.STOPPING
        log.log(logging.INFO if stopping or code == 0 else logging.ERROR, "%s (pid %s) ended: %s",
                self.name, self.proc.pid, describe_exit(code))
        if stopping or not self.autorestart:
            self._set_state(State.EXITED)  # STOPPING/RUNNING -> EXITED
        elif code == EXIT_BAD_CONFIG:
            self._set_state(State.FATAL)  # cannot start: bad config
        else:
            self._failed(now, early=now - self.started_at < START_SECS)

    def _failed(self, now, early):
        """A crash or a failed spawn: back off and retry, FATAL after MAX_FAST_FAILURES quick ones."""
        if early:
            self.fast_failures += 1
        if self.fast_failures >= MAX_FAST_FAILURES:
            self._set_state(State.FATAL)  # STARTING -> FATAL
            return
        delay = min(BACKOFF_MAX, 2.0 ** self.fast_failures) if self.fast_failures else 1.0
        self.retry_at = now + delay
        self._set_state(State.BACKOFF)  # RUNNING/STARTING -> BACKOFF

    def snapshot(self):
        running = self.alive and self.proc is not None
        return {
            "state": self.state.value, "alive": self.alive, "pid": self.proc.pid if running else None,
            "uptime_seconds": round(self.clock() - self.started_at, 1) if running else None,
            "restarts": self.restarts, "paused": self.paused, "hung": self.hung,
            "exit": describe_exit(self.exit_code),
            "retry_in_seconds": round(max(0.0, self.retry_at - self.clock()), 1) if self.state is State.BACKOFF else None,
            "last_error": self.last_error(),
        }

    def last_error(self):
        """Why the child failed: a spawn error, a hang, or its last error line on stderr."""
        if self.spawn_error:
            return self.spawn_error
        if self.hung:
            return f"{self.name} stopped answering (no heartbeat for {HUNG_AFTER_S:.0f} s) and was killed"
        for line in reversed(self.stderr_tail):
            if (" ERROR " in line or " CRITICAL " in line or "Error" in line or "error:" in line
                    or line.startswith(f"{self.name}: ")):  # our plain "cannot start" lines
                return line
        return self.stderr_tail[-1] if self.stderr_tail and self.state is State.FATAL else None
