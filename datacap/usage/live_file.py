"""collector.json: the collector's live figures (interfaces, rates, the cycle), and their reader.

The collector is the only writer, every interval, into the tmpfs runtime folder (data/ as a
fallback). Keys: status ("running" | "stopped"), pid, updated_at (the heartbeat), interval_seconds,
counted, count_as_of (epoch seconds up to which the figures hold every byte), cycle_used_bytes (the
first line's), sources,
interfaces {name: {rx_bytes, tx_bytes, rx_bps, tx_bps, counted, present}}, totals,
lines {line: {days, free, monitoring_since, used_bytes, count_as_of}} (each line's tables now),
last_error, ledger_flushed_at.
"""
import logging
import time
from datetime import datetime

from datacap import store

log = logging.getLogger("collector")

NAME = "collector.json"
STALE_INTERVALS = 3  # a file older than this many update intervals (+2 s) is stale, not live


def age_seconds(iso, now=None):
    """Seconds since an ISO 8601 timestamp, None when there is none."""
    try:
        then = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    return max(0.0, (now or time.time()) - then.timestamp())


def write(path, doc):
    """The collector's write: not fsynced (live data, not the ledger); a tmpfs folder someone cleaned is made
    again; a failure is logged and the next interval tries again."""
    try:
        try:
            store.write_json_atomic(path, doc, fsync=False)
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            store.write_json_atomic(path, doc, fsync=False)
    except OSError as exc:
        log.error("cannot write %s: %s", path, exc)


def line_part(tables, summary, count_as_of):
    """A line's part of the live file: the days its figure needs (the previous period's too, for rollover),
    and the instant up to which they hold every byte (epoch seconds, None before its counter has read)."""
    first = summary["previous_start"] or summary["start"]
    return {"days": {d: v for d, v in tables["days"].items() if d >= first},
            "free": {d: v for d, v in tables["free"].items() if d >= summary["start"]},
            "monitoring_since": tables.get("monitoring_since"), "used_bytes": summary["used_bytes"],
            "count_as_of": count_as_of}


def _normalize(doc):
    """The keys readers use, each of its type (a damaged or foreign file shows as "no data")."""
    out = dict(doc or {})
    for key, kind, default in (("counted", list, []), ("sources", list, []), ("interfaces", dict, {}),
                               ("totals", dict, {})):
        if not isinstance(out.get(key), kind):
            out[key] = default
    out["sources"] = [x for x in out["sources"] if isinstance(x, dict)]
    if not isinstance(out.get("last_error"), str):
        out["last_error"] = None
    return out


class Reader:
    """The live file as others see it: (document, age in seconds, stale?)."""

    def __init__(self, data_dir):
        self._files = [store.CachedReader(store.runtime_dir(data_dir) / NAME),
                       store.CachedReader(data_dir / NAME)]  # tmpfs, or data/ as a fallback

    def read(self, default_interval):
        live = _normalize(self._files[0].read() or self._files[1].read())
        age = age_seconds(live.get("updated_at"))
        interval = live.get("interval_seconds")
        interval = interval if isinstance(interval, (int, float)) and interval > 0 else default_interval
        stale = age is None or age > STALE_INTERVALS * interval + 2 or live.get("status") != "running"
        return live, age, stale

    def interfaces(self, default_interval):
        """Rows for /api/interfaces: live rates only while the file is fresh."""
        live, age, stale = self.read(default_interval)
        rows = []
        for name, v in live["interfaces"].items():
            if not isinstance(v, dict):
                continue
            row = {"name": name, **v}
            for key in ("rx", "tx"):
                bps = None if stale else v.get(f"{key}_bps")
                row[f"{key}_bps"], row[f"{key}_mbps"] = bps, None if bps is None else round(bps / 1e6, 3)
            rows.append(row)
        return {"interfaces": rows, "counted": live["counted"], "updated_at": live.get("updated_at"),
                "age_seconds": age, "stale": stale}
