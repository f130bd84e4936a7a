"""topups.json: data added to a prepaid bucket (POST /api/usage/topup), undoable; the server writes it.

{"items": [{id, line, at, bucket_start, gb, expires (ISO date or null), undone}]}
"""
import uuid
from datetime import date, datetime, timezone

from datacap import store

NAME = "topups.json"
KEPT = 200

items = store.ItemsFile.items


def active(doc, start):
    """The not-undone top-ups of the bucket that started on `start` (a date)."""
    return [t for t in items(doc) if t.get("bucket_start") == start.isoformat() and not t.get("undone")
            and isinstance(t.get("gb"), (int, float))]


def total_bytes(doc, start):
    return int(sum(t["gb"] for t in active(doc, start)) * 1e9)


def expiry(doc, start, expires):
    """The bucket's end: its plan's expiry, or a later one a top-up brought."""
    later = [date.fromisoformat(t["expires"]) for t in active(doc, start) if isinstance(t.get("expires"), str)]
    return max([expires, *later])


def file(data_dir):
    return store.ItemsFile(data_dir / NAME, KEPT)


def add(data_dir, start, gb, expires, line=None):
    return file(data_dir).add({"id": uuid.uuid4().hex[:8], "line": line,
                               "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "bucket_start": start.isoformat(), "gb": gb, "expires": expires, "undone": False})
