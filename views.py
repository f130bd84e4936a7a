"""What the API shows: the data files (parsed once per change) joined with the supervisor's view."""
import os
import platform
import socket
import time
from datetime import datetime, timezone

import psutil

import jsonstore
import usage

STALE_INTERVALS = 3  # a file older than this many update intervals (+2 s) is stale, not live
LIVE = ("running", "paused")


def age_seconds(iso, now=None):
    try:
        then = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    return max(0.0, (now or time.time()) - then.timestamp())


def local_now():
    return datetime.now().astimezone()


class Views:
    """Read-only composition of the JSON files; safe to call from any request thread."""

    def __init__(self, cfg, data_dir, supervisor=None):
        self.cfg = cfg
        self.data_dir = data_dir
        self.supervisor = supervisor
        self.started = time.time()
        self.downloader = jsonstore.CachedReader(data_dir / "downloader.json")
        self.usage = jsonstore.CachedReader(data_dir / "usage.json")
        self.adjustments = jsonstore.CachedReader(data_dir / "adjustments.json")
        self._live = [jsonstore.CachedReader(jsonstore.runtime_dir(data_dir) / "collector.json"),
                      jsonstore.CachedReader(data_dir / "collector.json")]  # tmpfs, or data/ as a fallback

    def _processes(self):
        return self.supervisor.snapshot() if self.supervisor else {}

    def summary(self):
        return usage.cycle_summary(self.usage.read(), self.adjustments.read(), self.cfg, local_now())

    def stats(self, since=None):
        d = dict(self.downloader.read() or {})
        proc = self._processes().get("downloader", {})
        status = d.get("status", "idle")
        reason = d.get("reason")
        state = proc.get("state")
        if state in ("starting", "running") and d.get("pid") != proc.get("pid"):
            status, d = "running", {"session_start": None}  # just spawned; its first write is on the way
        elif state == "stopping":
            status = "stopping"
        elif status in LIVE and state is not None and state not in ("starting", "running"):
            status, reason = ("error", f"downloader ended unexpectedly ({proc.get('exit')})") \
                if proc.get("exit") else ("stopped", "interrupted: the server restarted")
        elif status in LIVE and state is None and d.get("pid") and not psutil.pid_exists(d["pid"]):
            status, reason = "stopped", "interrupted"
        interval = d.get("update_interval_seconds", self.cfg["update_interval_seconds"])
        age = age_seconds(d.get("updated_at"))
        stale = status in LIVE and age is not None and age > STALE_INTERVALS * interval + 2
        summary = self.summary()
        points = d.get("data_points", [])
        if since is not None:
            points = [p for p in points if p["t"] > since]
        out = {
            "status": status, "reason": reason, "stale": stale, "age_seconds": age,
            "speed_mbps": d.get("speed_mbps", 0.0) if status == "running" else 0.0,
            "total_gb": d.get("total_gb", 0.0), "total_bytes": d.get("total_bytes", 0),
            "session_duration": d.get("session_duration", 0.0), "avg_speed": d.get("avg_speed", 0.0),
            "peak_speed": d.get("peak_speed", 0.0), "baseline_speed": d.get("baseline_speed"),
            "throttle_detected": bool(d.get("throttle_detected")) and status in LIVE,
            "throttle_events": d.get("throttle_events", []),
            "cap_percentage": summary["percent"], "cap_bytes": summary["cap_bytes"],
            "cycle_used_bytes": summary["used_bytes"],
            "data_points": points, "last_update": d.get("updated_at"),
        }
        for key in ("session_id", "session_start", "streams", "urls", "limit_bytes", "stop_at_cap",
                    "threshold_percent", "last_error", "error_count", "past_sessions"):
            out[key] = d.get(key)
        if since is None:
            out["history"] = d.get("history", [])
        return out

    def collector_live(self):
        live = self._live[0].read() or self._live[1].read() or {}
        age = age_seconds(live.get("updated_at"))
        interval = live.get("interval_seconds", self.cfg["update_interval_seconds"])
        stale = age is None or age > STALE_INTERVALS * interval + 2 or live.get("status") != "running"
        return live, age, stale

    def interfaces(self):
        live, age, stale = self.collector_live()
        rows = [{"name": n, **v, "rx_mbps": None if stale or v.get("rx_bps") is None else round(v["rx_bps"] / 1e6, 3),
                 "tx_mbps": None if stale or v.get("tx_bps") is None else round(v["tx_bps"] / 1e6, 3)}
                for n, v in (live.get("interfaces") or {}).items()]
        if stale:
            for r in rows:
                r["rx_bps"] = r["tx_bps"] = None
        return {"interfaces": rows, "counted": live.get("counted", []), "updated_at": live.get("updated_at"),
                "age_seconds": age, "stale": stale}

    def usage_view(self):
        ledger = self.usage.read() or {}
        cycle = self.summary()
        days = ledger.get("days", {})
        count = self.cfg["count"]
        return {
            "cap_gb": self.cfg["data_cap_gb"], "cap_bytes": cycle["cap_bytes"], "count": count,
            "billing_day": self.cfg["billing_day"], "cycle": cycle,
            "today": {"date": local_now().date().isoformat(), "used_bytes": cycle["today_bytes"]},
            "interfaces": {n: {"rx_bytes": rx, "tx_bytes": tx} for n, (rx, tx) in ledger.get("totals", {}).items()},
            "counted": ledger.get("counted", []),
            "daily": [{"date": day, "used_bytes": usage.used_bytes(v, count),
                       "interfaces": {n: {"rx_bytes": rx, "tx_bytes": tx} for n, (rx, tx) in v.items()}}
                      for day, v in sorted(days.items())],
            "hourly": [{"hour": h, "used_bytes": usage.used_bytes(v, count)} for h, v in sorted(ledger.get("hours", {}).items())],
            "alerts": ledger.get("alerts", []), "counter_events": ledger.get("counter_events", []),
            "adjustments": (self.adjustments.read() or {}).get("items", []),
            "updated_at": ledger.get("updated_at"),
            "ledger_error": self.collector_live()[0].get("last_error"),
        }

    def system(self):
        procs = self._processes()
        vm = psutil.virtual_memory()
        return {
            "host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_percent": psutil.cpu_percent(interval=None), "memory_percent": vm.percent,
            "memory_total_bytes": vm.total, "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "boot_time": datetime.fromtimestamp(psutil.boot_time(), timezone.utc).isoformat(),
            "data_dir": str(self.data_dir),
            "processes": {"server": {"state": "running", "pid": os.getpid(),
                                     "uptime_seconds": round(time.time() - self.started, 1)}, **procs},
        }

    def health(self):
        """(healthy, reasons): the server answers, and the collector is alive and writing."""
        reasons = []
        proc = self._processes().get("collector")
        if proc is not None and proc["state"] not in ("starting", "running"):
            reasons.append(f"collector is {proc['state']}")
        _, age, stale = self.collector_live()
        if stale:
            reasons.append("collector data is stale" if age is not None else "collector has written no data yet")
        return not reasons, reasons
