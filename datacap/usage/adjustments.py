"""adjustments.json: the ISP meter's readings a user entered (POST /api/usage/adjust), and their readers.

The server is the only writer, under the data folder's state lock; the collector reads it for the
cycle figure. {"items": [{id, line, at, cycle_start, isp_bytes, counted_bytes, offset_bytes, note, undone}]}
"""
import uuid
from datetime import datetime, timezone

from datacap import store

NAME = "adjustments.json"
KEPT = 100


items = store.ItemsFile.items


def active(doc, start):
    """The newest not-undone ISP reading for the cycle that started on `start` (a date)."""
    live = [a for a in items(doc) if a.get("cycle_start") == start.isoformat() and not a.get("undone")
            and isinstance(a.get("offset_bytes"), int)]
    return live[-1] if live else None


def file(data_dir):
    return store.ItemsFile(data_dir / NAME, KEPT)


def add(data_dir, summary, isp_bytes, note, line=None):
    """Record a reading against the cycle `summary` describes (of `line`); return the new item."""
    return file(data_dir).add({
        "id": uuid.uuid4().hex[:8], "line": line, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cycle_start": summary["start"], "isp_bytes": isp_bytes, "counted_bytes": summary["counted_bytes"],
        "offset_bytes": isp_bytes - summary["counted_bytes"], "note": note, "undone": False})
