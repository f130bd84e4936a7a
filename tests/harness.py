"""Start the real server.py (and so the real children) on a free port in a temp folder."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what="condition", interval=0.05):
    """Poll predicate until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def write_config(folder, **overrides):
    # sources: this machine only; "auto" would send SSDP searches for a UPnP gateway onto the host's LAN.
    # No scheduled probes unless a test asks: a probe is a downloader the test did not start.
    cfg = {"test_urls": ["http://127.0.0.1:9/none"], "port": free_port(), "update_interval_seconds": 0.5,
           "stop_at_cap": False, "baseline_seconds": 5, "sources": [{"type": "local"}],
           "probe_interval_minutes": None, **overrides}
    path = Path(folder) / "config.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


class Server:
    """server.py as a user runs it; stop() sends SIGTERM like systemd does."""

    def __init__(self, folder, **config):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path = write_config(self.folder, **config)
        self.port = json.loads(self.config_path.read_text())["port"]
        self.data_dir = self.folder / "data"
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.folder / "server.log"
        self.proc = None

    def start(self, *extra):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(self.config_path),
                                      "--data-dir", str(self.data_dir), "--no-browser", *extra],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.folder))
        wait_for(lambda: self.proc.poll() is not None or requests.get(self.url + "/healthz", timeout=1).ok, 10,
                 "server to answer /healthz")
        assert self.proc.poll() is None, self.log()
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=5, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=5, **kw)

    def stats(self):
        return self.get("/api/stats").json()

    def children(self):
        """Live child processes, by script name."""
        out = {}
        for p in psutil.Process(self.proc.pid).children():
            try:
                cmd = " ".join(p.cmdline())
            except psutil.Error:
                continue
            for name in ("collector", "downloader"):
                if f"{name}.py" in cmd and p.status() != psutil.STATUS_ZOMBIE:
                    out[name] = p
        return out

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


def stop_process(proc, timeout=10):
    """SIGTERM a Popen we started (if it still runs), SIGKILL it after `timeout` seconds, reap it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pids_alive(pids):
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def kill_tree_leftovers(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def exit_cleanly_on_sigterm():
    """Benches: turn SIGTERM into SystemExit so `finally:` stops the server they started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
