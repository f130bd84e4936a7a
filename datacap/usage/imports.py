"""imports.json: daily totals brought in from another meter (vnStat), and the rule that reads vnStat's JSON.

    vnstat -i eth0 --json d | curl -X POST --data-binary @- -H 'Content-Type: application/json' \\
        'http://127.0.0.1:8000/api/usage/import?line=Starlink'

The server checks the JSON and keeps the days ({"items": [{id, at, line, source, interface, created, days:
{date: [rx, tx]}}]}); the collector, the ledger's one writer, merges each item once into its line: days
before the line's first counted day whole, that day less what datacap counted of it, later days not at all
(datacap counted them). A day imported again replaces the earlier import of that day.
"""
import uuid
from datetime import date, datetime, timezone

from datacap import store

NAME = "imports.json"
KEPT = 50
items = store.ItemsFile.items


def file(data_dir):
    return store.ItemsFile(data_dir / NAME, KEPT)


def _day(d):
    try:
        return date(d["year"], d["month"], d["day"]).isoformat()
    except (KeyError, TypeError, ValueError):
        return None


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 63


def from_vnstat(doc, interface=None):
    """(interface, created ISO date or None, {date: [rx, tx]}) from `vnstat --json d` output; ValueError
    naming what is wrong with anything else."""
    if not isinstance(doc, dict) or "vnstatversion" not in doc or "interfaces" not in doc:
        raise ValueError("not vnStat's JSON: expected the output of `vnstat -i IFACE --json d`")
    if str(doc.get("jsonversion")) != "2":
        raise ValueError(f"vnStat JSON version {doc.get('jsonversion')!r}: only version 2 (vnStat 2.x) is read")
    found = [i for i in doc["interfaces"] if isinstance(i, dict)] if isinstance(doc["interfaces"], list) else []
    names = [i.get("name") for i in found]
    if interface is not None:
        found = [i for i in found if i.get("name") == interface]
    if len(found) != 1:
        raise ValueError(f"the JSON has interfaces {names}: choose one with ?interface=NAME"
                         if interface is None else f"no interface {interface!r} in the JSON (it has {names})")
    iface = found[0]
    days = (iface.get("traffic") or {}).get("day") if isinstance(iface.get("traffic"), dict) else None
    if not isinstance(days, list) or not days:
        raise ValueError(f"interface {iface.get('name')!r} has no daily totals (export with --json d)")
    out = {}
    for i, d in enumerate(days):
        day = _day(d.get("date")) if isinstance(d, dict) else None
        if day is None or not _count(d.get("rx")) or not _count(d.get("tx")):
            raise ValueError(f"day {i + 1} of {iface.get('name')!r} is damaged (needs date, rx and tx in bytes)")
        out[day] = [d["rx"], d["tx"]]
    created = _day((iface.get("created") or {}).get("date")) if isinstance(iface.get("created"), dict) else None
    return iface.get("name"), created, out


def add(data_dir, line, interface, created, days):
    return file(data_dir).add({"id": uuid.uuid4().hex[:8], "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "line": line, "source": "vnstat", "interface": interface, "created": created,
                               "days": days})
