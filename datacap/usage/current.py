"""The cycle's usage as every reader but the collector sees it: one figure, at most one interval old.

The collector writes the cycle's days into its live file every interval and into the ledger once a
minute; readers take whichever is newer (the live file, unless the collector has stopped) and
compute the summary with the one function in cycles.py, with their own config and the ISP readings.
"""
from datetime import datetime

from datacap import store
from datacap.usage import adjustments, cycles, live_file, topups


def _ts(iso):
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


class CycleReader:
    def __init__(self, data_dir):
        self.live = live_file.Reader(data_dir)
        self.ledger = store.CachedReader(data_dir / "usage.json")
        self.adjustments = store.CachedReader(data_dir / adjustments.NAME)
        self.topups = store.CachedReader(data_dir / topups.NAME)

    def source(self, default_interval):
        """(document with days and monitoring_since, its time as epoch seconds or None, live?)."""
        live, _, stale = self.live.read(default_interval)
        ledger = self.ledger.read() or {}
        live_at, ledger_at = _ts(live.get("updated_at")), _ts(ledger.get("updated_at"))
        if isinstance(live.get("days"), dict) and live_at is not None and (ledger_at is None or live_at >= ledger_at):
            return live, live_at, not stale
        return ledger, ledger_at, False

    def summary_at(self, cfg, now):
        """(summary, epoch seconds of the count it is based on, or None when there is no count yet)."""
        doc, at, live = self.source(cfg["update_interval_seconds"])
        out = cycles.cycle_summary(doc, self.adjustments.read(), cfg, now, self.topups.read())
        out["as_of"] = cycles.local_at(at, now.tzinfo).isoformat(timespec="seconds") if at is not None else None
        out["live"] = live
        return out, at

    def summary(self, cfg, now):
        return self.summary_at(cfg, now)[0]
