"""What the API shows: the children's files, read through their own readers, joined with the supervisor."""
import os
import platform
import socket
import time
from datetime import datetime, timezone

import filelock
import psutil
from flask import current_app

from datacap import store
from datacap.fleet.settings import site_name
from datacap.devices import device_db
from datacap.devices import live as devices_live
from datacap.measure import history, session_file
from datacap.supervise.states import UP, State
from datacap.usage import adjustments, ledger_file, live_file
from datacap.usage.current import CycleReader
from datacap.web import usage_view


def views():
    """The Views of the app serving this request."""
    return current_app.extensions["datacap"]


class Views:
    """Read-only composition of the JSON files; safe to call from any request thread."""

    def __init__(self, cfg, data_dir, config_path, supervisor=None):
        self.cfg = cfg
        self.data_dir, self.config_path = data_dir, config_path
        self.supervisor = supervisor
        self.started = time.time()
        self.downloader = session_file.Reader(data_dir)
        self.usage = ledger_file.Reader(data_dir)
        self.adjustments = store.CachedReader(data_dir / adjustments.NAME)
        self.live = live_file.Reader(data_dir)
        self.cycle = CycleReader(data_dir)
        self.history = history.Reader(data_dir)  # finished tests (measure/history.py)
        self.devices_live = devices_live.Reader(data_dir)  # LAN devices (devices/live.py, device_db.py)
        self.devices_db = device_db.Reader(data_dir)
        self.state_lock = filelock.FileLock(str(data_dir / "state.lock"))  # the server's read-modify-writes

    def _processes(self):
        return self.supervisor.snapshot() if self.supervisor else {}

    def summary(self, line=None):
        """A line's cycle figure (the first line's by default) from the collector's live count."""
        return usage_view.summary(self, line)

    STATS_SHARED_S = 0.1  # the clock's part of an answer (its age, the cycle figures) may be this old
    _stats_shared = (None, 0.0, {})  # (the downloader's document, since when, {(since, process): JSON})

    def stats_json(self, since=None):
        """stats() serialized, one answer per `since` and downloader process until downloader.json changes
        (or STATS_SHARED_S passes): dashboards whose polls differ in a header (a cookie, a browser), which
        web/shared_polls.py cannot share, still share the work of the answer."""
        proc = self._processes().get("downloader") or {}
        key = (since, proc.get("state"), proc.get("pid"), proc.get("exit"))
        doc, now = self.downloader.read(), time.monotonic()  # one object per change of the file
        shared_doc, at, answers = self._stats_shared
        if doc is not shared_doc or now - at >= self.STATS_SHARED_S:
            answers = {}
            self._stats_shared = (doc, now, answers)
        body = answers.get(key)
        if body is None:
            body = answers[key] = current_app.json.dumps(self.stats(since)) + "\n"
        return body

    def stats(self, since=None):
        proc = self._processes().get("downloader")
        d, status, reason = session_file.effective(self.downloader.read(), proc, psutil.pid_exists)
        interval = d["update_interval_seconds"] or self.cfg["update_interval_seconds"]
        age = live_file.age_seconds(d["updated_at"])
        stale = status in session_file.LIVE and age is not None and age > live_file.STALE_INTERVALS * interval + 2
        summary = self.summary()
        points = d["data_points"] if since is None else [p for p in d["data_points"] if p["t"] > since]
        out = {
            "status": status.value, "reason": reason, "stale": stale, "age_seconds": age,
            "speed_mbps": d["speed_mbps"] if status is session_file.Status.RUNNING else 0.0,
            "throttle_detected": d["throttle_detected"] and status in session_file.LIVE,
            "cap_percentage": summary["percent"], "cap_bytes": summary["cap_bytes"],
            "cycle_used_bytes": summary["used_bytes"], "data_points": points, "last_update": d["updated_at"],
        }
        for key in ("total_gb", "total_bytes", "session_duration", "avg_speed", "peak_speed", "baseline_speed",
                    "throttle_events", "events", "session_id", "session_start", "streams", "urls", "limit_bytes",
                    "stop_at_cap", "cap_stop", "threshold_percent", "last_error", "error_count", "url_errors", "problem",
                    "outage", "stream_speeds_mbps", "per_connection_mbps", "resting"):
            out[key] = d[key]
        if since is None:
            out["history"] = d["history"]
        return out

    def interfaces(self):
        return self.live.interfaces(self.cfg["update_interval_seconds"])

    def sources(self):
        live, _, stale = self.live.read(self.cfg["update_interval_seconds"])
        totals = ledger_file.totals(self.cycle.source(self.cfg["update_interval_seconds"])[0])
        out = []
        for src in live["sources"]:
            names = [src.get("name")] if src.get("type") != "local" else live["interfaces"].keys()
            rows = [totals.get(n) for n in names if totals.get(n)]
            out.append({**src, "stale": stale, "rx_bytes": sum(r["rx_bytes"] for r in rows),
                        "tx_bytes": sum(r["tx_bytes"] for r in rows)})
        return out

    def usage_view(self):
        return usage_view.usage(self)

    def system(self):
        procs = self._processes()
        vm = psutil.virtual_memory()
        return {
            "host": socket.gethostname(), "site": site_name(self.cfg),
            "platform": platform.platform(), "python": platform.python_version(),
            "cpu_percent": psutil.cpu_percent(interval=None), "memory_percent": vm.percent,
            "memory_total_bytes": vm.total, "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "boot_time": datetime.fromtimestamp(psutil.boot_time(), timezone.utc).isoformat(),
            "data_dir": str(self.data_dir),
            "processes": {"server": {"state": State.RUNNING.value, "pid": os.getpid(),
                                     "uptime_seconds": round(time.time() - self.started, 1)}, **procs},
        }

    def health(self):
        """(healthy, reasons): the server answers, and the collector is alive and writing."""
        reasons = []
        proc = self._processes().get("collector")
        if proc is not None and proc["state"] not in UP:
            reasons.append(f"collector is {proc['state']}")
        live, age, stale = self.live.read(self.cfg["update_interval_seconds"])
        if stale:
            reasons.append("collector data is stale" if age is not None else "collector has written no data yet")
        elif live["last_error"]:
            reasons.append(f"collector: {live['last_error']}")
        save_error = self.downloader.read().get("save_error")
        if save_error:
            reasons.append(f"downloader: {save_error}")
        return not reasons, reasons
