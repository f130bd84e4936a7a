"""device_requests.json: pause and unpause requests from the dashboard or the API, for the collector to apply.

The server is its only writer (appending under its state lock, as with adjustments.json); the collector reads it
whenever it changes (checked every half second), applies each request it has not applied yet and records the
request's id in devices.db with the pause itself, so a restart neither applies one twice nor misses one.
{"items": [{"id", "at", "mac", "action": "pause" | "unpause", "until": null | "tomorrow" | "cycle"}]}
"""
import uuid
from datetime import datetime, timezone

from datacap import store

NAME = "device_requests.json"
KEPT = 200

items = store.ItemsFile.items


def add(data_dir, mac, action, until=None):
    return store.ItemsFile(data_dir / NAME, KEPT).add({
        "id": uuid.uuid4().hex[:12], "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mac": mac, "action": action, "until": until})
