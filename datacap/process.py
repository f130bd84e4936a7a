"""What every datacap process shares: signals as a queue, arguments, logging, config, heartbeat."""
import argparse
import logging
import os
import queue
import signal
import sys
import time
from pathlib import Path

from datacap import config as configmod
from datacap import store

PARENT_ENV = "DATACAP_PARENT_PID"
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)


class SignalQueue:
    """Signal handlers only enqueue the signal number; the process loop acts on it.

    The server spawns us with these signals blocked, so one sent while we were still starting
    waits (pending) instead of killing us; it is delivered here, once the handlers exist.
    """

    def __init__(self):
        self._queue = queue.SimpleQueue()
        for sig in HANDLED:
            signal.signal(sig, lambda signum, frame: self._queue.put_nowait(signum))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)

    def drain(self):
        """Return the signals received since the last call, oldest first."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


class Heartbeat:
    """Touch `<role>.heartbeat` in the runtime folder about once a second: the supervisor's sign of life."""

    def __init__(self, data_dir, role, clock=time.monotonic):
        self.path = store.runtime_dir(data_dir, create=True) / f"{role}.heartbeat"
        self.clock, self._at = clock, None

    def beat(self):
        now = self.clock()
        if self._at is not None and now - self._at < 1.0:
            return
        self._at = now
        try:
            os.utime(self.path)
        except FileNotFoundError:
            try:
                self.path.touch()
            except OSError:
                pass
        except OSError:
            pass


def parent_gone():
    """True when the server that spawned us has died (we were re-parented)."""
    expected = os.environ.get(PARENT_ENV)
    return bool(expected) and os.getppid() != int(expected)


def setup_logging(level="INFO"):
    """Plain lines on stderr, which journald reads."""
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def base_parser(description):
    """Arguments every datacap process takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", type=Path, default=None, help="config file (default ./config.json)")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default ./data)")
    p.add_argument("--log-level", default=os.environ.get("DATACAP_LOG_LEVEL", "INFO"))
    return p


def data_dir_from(args):
    folder = args.data_dir or os.environ.get("DATACAP_DATA_DIR") or configmod.DEFAULT_DATA_DIR
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def load_config_or_exit(path, program):
    """Load config; on a bad one print one line per bad key and exit EXIT_BAD_CONFIG."""
    try:
        return configmod.load(path)
    except configmod.ConfigError as exc:
        for key, message in exc.errors.items():
            print(f"{program}: config error: {key}: {message}", file=sys.stderr)
        sys.exit(configmod.EXIT_BAD_CONFIG)


def reload_config(path, current, log):
    """SIGHUP: re-read config; keep the current one if the new file is bad."""
    try:
        fresh = configmod.load(path)
    except configmod.ConfigError as exc:
        log.error("config reload refused, keeping the previous settings: %s", exc)
        return current
    log.info("config reloaded")
    return fresh
