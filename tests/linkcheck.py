"""Run the real downloader against a real link and read what it says, for link tests and bench/links.py."""
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from datacap import process  # noqa: E402
from harness import stop_process  # noqa: E402


class Session:
    """downloader.py in its own temp data dir, its live file in a private runtime folder."""

    def __init__(self, tmp, urls, streams=4, **config):
        self.dir = Path(tmp)
        self.live = self.dir / "run" / "downloader.json"
        self.live.parent.mkdir(mode=0o700, exist_ok=True)
        cfg = {"stop_at_cap": False, **config}
        (self.dir / "config.json").write_text(json.dumps(cfg))
        argv = [sys.executable, str(ROOT / "downloader.py"), "--config", str(self.dir / "config.json"),
                "--data-dir", str(self.dir / "data"), "--streams", str(streams)]
        for url in urls:
            argv += ["--url", url]
        env = {**os.environ, "RUNTIME_DIRECTORY": str(self.live.parent),
               process.PARENT_ENV: str(os.getpid())}  # it exits by itself if we die
        self.log = open(self.dir / "downloader.log", "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def read(self):
        try:
            return json.loads(self.live.read_text())
        except (OSError, ValueError):
            return None

    def wait_for(self, pred, timeout, what):
        """The first snapshot for which pred holds; AssertionError naming `what` at the deadline."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            d = self.read()
            if d and pred(d):
                return d
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout} s: {what}; last: {summary(self.read())}")

    def fresh(self):
        """A snapshot written in the last 0.2 s: its total_bytes is the count at about that moment."""
        last = (self.read() or {}).get("updated_at")
        return self.wait_for(lambda d: d["updated_at"] != last, 5, "a new snapshot")

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def epoch(iso_text):
    return datetime.fromisoformat(iso_text).timestamp()


def kinds(d, kind):
    return [e for e in d.get("events", []) if e["kind"] == kind]


def summary(d):
    if not d:
        return None
    return {k: d.get(k) for k in ("status", "reason", "speed_mbps", "baseline_speed", "total_bytes", "outage")} | {
        "events": [(e["kind"], e["start"][11:19], (e.get("end") or "")[11:19]) for e in d.get("events", [])]}


def goodput_mbps(d, t0, t1):
    """The downloader's own goodput between two epoch times, from its 1-s points."""
    pts = [(epoch(p["time"]) + 1, p["bytes"]) for p in d["data_points"]]
    inside = [(t, b) for t, b in pts if t0 <= t <= t1]
    if len(inside) < 2:
        return None
    (ta, ba), (tb, bb) = inside[0], inside[-1]
    return (bb - ba) * 8 / (tb - ta) / 1e6


def overlapping(events):
    """Pairs of same-kind events where the later one starts before the earlier one ends."""
    out = []
    for kind in {e["kind"] for e in events}:
        same = sorted((e for e in events if e["kind"] == kind), key=lambda e: e["start"])
        out += [(a, b) for a, b in zip(same, same[1:]) if a["end"] is None or epoch(b["start"]) < epoch(a["end"])]
    return out
