"""A line's cycle figure as every reader but the collector sees it: one figure, at most one interval old.

The collector writes each line's days into its live file every interval and into the ledger once a
minute; readers take whichever is newer (the live file, unless the collector has stopped) and
compute the figure with the one function in figure.py, with the line's plan and the ISP readings.
"""
from datetime import datetime

from datacap import store
from datacap.usage import adjustments, cycles, figure, ledger_file, lines, live_file, topups


def _ts(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    try:
        return datetime.fromisoformat(v).timestamp()
    except (TypeError, ValueError):
        return None


class CycleReader:
    def __init__(self, data_dir):
        self.live = live_file.Reader(data_dir)
        self.ledger = ledger_file.Reader(data_dir)
        self.adjustments = store.CachedReader(data_dir / adjustments.NAME)
        self.topups = store.CachedReader(data_dir / topups.NAME)

    def source(self, default_interval):
        """(the newer of the live file and the ledger, live?)."""
        live, _, stale = self.live.read(default_interval)
        ledger = self.ledger.read()
        live_at, ledger_at = _ts(live.get("updated_at")), _ts(ledger.get("updated_at"))
        tables = isinstance(live.get("lines"), dict) or isinstance(live.get("days"), dict)  # (days: before lines)
        if tables and live_at is not None and (ledger_at is None or live_at >= ledger_at):
            return live, not stale
        return ledger, False

    @staticmethod
    def _as_of(doc, tables, line):
        """When a line's figure in this document holds every byte up to (epoch seconds), None when unknown."""
        if "count_as_of" in tables:
            return _ts(tables["count_as_of"])
        ledger = doc.get("count_as_of")  # the ledger keeps one per line; older files none
        return _ts(ledger.get(line) if isinstance(ledger, dict) else doc.get("updated_at"))

    def records(self, cfg, line):
        """(ISP readings, top-ups) of a line."""
        first = lines.of(cfg)[0].name
        return (store.ItemsFile.of_line(self.adjustments.read(), line.name, first),
                store.ItemsFile.of_line(self.topups.read(), line.name, first))

    def summary_at(self, cfg, now, line=None, own=()):
        """(summary, epoch seconds its count holds every byte up to, or None when there is no count yet)."""
        line = line or lines.of(cfg)[0]
        doc, live = self.source(cfg["update_interval_seconds"])
        tables = ledger_file.line_of(doc, line.name)
        at = self._as_of(doc, tables, line.name)
        out = figure.summarize(tables, line.plan, line.count, now, *self.records(cfg, line), own)
        out["as_of"] = cycles.local_at(at, now.tzinfo).isoformat(timespec="seconds") if at is not None else None
        out["live"] = live
        return out, at

    def summary(self, cfg, now, line=None, own=()):
        return self.summary_at(cfg, now, line, own)[0]
