"""probes.json: each probe of this cycle and the 12 before, each cycle's finding, the quiet-link rule.

The probe child (`downloader.py --probe`, measure/probe/run.py) is the only writer; one probe runs
at a time (its own instance lock). Readers get a normalized document and never a 500.

A probe record: id, time (ISO 8601), cycle_start (the cycle's first day), cycle_used_bytes (the
collector's live count when the probe began), mbps (null when nothing settled enough to say),
ttfb_ms, bytes (every byte it read, counted toward the budget whatever the outcome), seconds,
settled, stopped_by (settled | bytes | time | cancelled | error), quiet, background_mbps, error.
A probe that did not settle keeps its figure, marked (settled false), out of the finding and the
dashboard's line.
"""
import numbers
from datetime import datetime, timezone

from datacap import store
from datacap.measure.probe import finding as probe_finding

NAME = "probes.json"
CYCLES_KEPT = 13  # this cycle and the 12 before
THIS_CYCLE_KEPT = 1500  # a month of probes every 30 min
PAST_CYCLE_KEPT = 200  # a past cycle is thinned evenly to this many (its finding is kept as found)
QUIET_FRACTION = 0.10  # the link is quiet while other traffic is below a tenth of the last known speed
QUIET_UNKNOWN_BPS = 1e6  # before any speed is known: below 1 Mbit/s
FIELDS = ("id", "time", "cycle_start", "cycle_used_bytes", "mbps", "ttfb_ms", "bytes", "seconds", "settled",
          "stopped_by", "quiet", "background_mbps", "error", "line")


def _num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _valid(p):
    return (isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("time"), str)
            and isinstance(p.get("cycle_start"), str) and _num(p.get("bytes")) and _num(p.get("cycle_used_bytes"))
            and (p.get("mbps") is None or _num(p.get("mbps"))))


def normalize(doc):
    """Every key present, every probe well-formed; a damaged file is "no probes yet"."""
    doc = doc if isinstance(doc, dict) else {}
    probes = [{k: p.get(k) for k in FIELDS} for p in doc.get("probes") or [] if _valid(p)]
    findings = [f for f in doc.get("findings") or [] if isinstance(f, dict) and isinstance(f.get("id"), str)]
    return {"updated_at": doc.get("updated_at") if isinstance(doc.get("updated_at"), str) else None,
            "probes": probes, "findings": findings}


class Reader:
    def __init__(self, data_dir):
        self._file = store.CachedReader(data_dir / NAME)

    def read(self):
        return normalize(self._file.read())


_readers = {}  # data folder -> Reader, shared by the API, /metrics and the notifier


def reader(data_dir):
    """The one cached Reader of a data folder's probes.json."""
    if data_dir not in _readers:
        _readers[data_dir] = Reader(data_dir)
    return _readers[data_dir]


def of_cycle(doc, cycle_start):
    return [p for p in doc["probes"] if p["cycle_start"] == cycle_start]


def last_speed_bps(doc):
    """The newest quiet probe's rate in bits/s (None before one has measured)."""
    for p in reversed(doc["probes"]):
        if p["mbps"] and p.get("quiet"):
            return p["mbps"] * 1e6
    return None


def link_rate_bps(rows):
    """Download bits/s on the counted interfaces from the collector's live rows; None when not live."""
    rates = [r["rx_bps"] for r in rows if r.get("counted")]
    if not rates or any(r is None for r in rates):
        return None
    return float(sum(rates))


def quiet(rate_bps, last_speed_bps):
    """The link is otherwise quiet: the collector's live rate well below the last known speed (bits/s)."""
    if rate_bps is None:
        return False
    return rate_bps < (QUIET_FRACTION * last_speed_bps if last_speed_bps else QUIET_UNKNOWN_BPS)


def _thin(probes, keep):
    if len(probes) <= keep:
        return probes
    step = len(probes) / keep
    return [probes[int(i * step)] for i in range(keep - 1)] + [probes[-1]]


def _bounded(probes, current):
    """This cycle's newest THIS_CYCLE_KEPT, past cycles thinned, the CYCLES_KEPT newest cycles."""
    starts = sorted({p["cycle_start"] for p in probes})[-CYCLES_KEPT:]
    out = []
    for start in starts:
        mine = [p for p in probes if p["cycle_start"] == start]
        out += mine[-THIS_CYCLE_KEPT:] if start == current else _thin(mine, PAST_CYCLE_KEPT)
    return out


def add(data_dir, record, threshold_percent):
    """Append one probe, bound the file, refresh its cycle's finding; written atomically."""
    doc = normalize(store.read_json(data_dir / NAME))
    cycle = record["cycle_start"]
    probes = _bounded(doc["probes"] + [{k: record.get(k) for k in FIELDS}], cycle)
    kept = {p["cycle_start"] for p in probes}
    findings = [f for f in doc["findings"] if f.get("cycle_start") in kept and f.get("cycle_start") != cycle]
    findings += probe_finding.find([p for p in probes if p["cycle_start"] == cycle], threshold_percent)
    out = {"updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "probes": probes, "findings": findings}
    store.write_json_atomic(data_dir / NAME, out)
    return out
