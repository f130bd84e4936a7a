"""downloader.json: the test session's status names, its format, and the readers everyone else calls.

The downloader (measure/session.py) is the only writer. Readers get a normalized dict: every key
present, every value of the right type (a damaged or foreign file is "no data", never a 500).
"""
import enum
import numbers

from datacap import store
from datacap.supervise.states import UP
from datacap.supervise.states import State as ProcessState

NAME = "downloader.json"


class Status(enum.Enum):
    """A test's status, as the API and the dashboard show it: the one definition."""
    IDLE = "idle"  # no session in the file
    CONNECTING = "connecting"  # started; no bytes from any test URL yet
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # the supervisor has asked it to stop
    STOPPED = "stopped"
    FINISHED = "finished"  # a limit or the cap ended it
    ERROR = "error"


LIVE = (Status.CONNECTING, Status.RUNNING, Status.PAUSED)
DONE = (Status.STOPPED, Status.FINISHED, Status.ERROR)
# What a user may do in each status; the dashboard reads this table from /api/meta.
ACTIONS = {
    Status.IDLE: ["start"], Status.STOPPED: ["start", "reset"], Status.FINISHED: ["start", "reset"],
    Status.ERROR: ["start", "reset"], Status.RUNNING: ["pause", "stop"], Status.PAUSED: ["resume", "stop"],
    Status.CONNECTING: ["pause", "stop"], Status.STOPPING: [],
}

_num = (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool))
_int = (lambda v: isinstance(v, int) and not isinstance(v, bool))
_str = (lambda v: isinstance(v, str))
_list = (lambda v: isinstance(v, list))
_opt = (lambda check: (lambda v: v is None or check(v)))
_dict = (lambda v: isinstance(v, dict))

# key: (default, check). The file holds these keys and no others.
FIELDS = {
    "status": ("idle", lambda v: v in {s.value for s in Status}),
    "reason": (None, _opt(_str)), "pid": (None, _opt(_int)),
    "session_id": (None, _opt(_str)), "session_start": (None, _opt(_str)),
    "updated_at": (None, _opt(_str)), "update_interval_seconds": (None, _opt(_num)),
    "speed_mbps": (0.0, _num), "avg_speed": (0.0, _num), "peak_speed": (0.0, _num),
    "baseline_speed": (None, _opt(_num)), "total_bytes": (0, _int), "total_gb": (0.0, _num),
    "session_duration": (0.0, _num), "throttle_detected": (False, lambda v: isinstance(v, bool)),
    "throttle_events": ([], _list), "events": ([], _list), "outage": (False, lambda v: isinstance(v, bool)),
    "streams": (None, _opt(_int)), "urls": (None, _opt(_list)),
    "stream_speeds_mbps": ([], _list), "per_connection_mbps": (None, _opt(_num)),
    "limit_bytes": (None, _opt(_int)), "stop_at_cap": (None, _opt(lambda v: isinstance(v, bool))),
    "threshold_percent": (None, _opt(_num)), "last_error": (None, _opt(_dict)), "error_count": (0, _int),
    "data_points": ([], _list), "history": ([], _list),
    "url_errors": ([], _list), "problem": (None, _opt(_str)),  # failures in words (measure/errors.py)
    "save_error": (None, _opt(_str)),
    "cap_stop": (None, _opt(_dict)),  # the figure stop_at_cap stopped on (measure/cap_guard.py)
    "line": (None, _opt(_str)),  # the line the test runs over (None: the config has no lines)
    "resting": (None, _opt(_dict)),  # the refill check's rest (measure/refill.py): seconds, left_s, why
}


def normalize(raw):
    """Every field present and of its type; a wrong-typed value becomes its default."""
    raw = raw if isinstance(raw, dict) else {}
    out = {}
    for key, (default, check) in FIELDS.items():
        value = raw.get(key, default)
        out[key] = value if check(value) else (list(default) if isinstance(default, list) else default)
    out["data_points"] = [p for p in out["data_points"] if _point(p)]
    out["history"] = [p for p in out["history"] if _point(p)]
    out["throttle_events"] = [e for e in out["throttle_events"] if isinstance(e, dict)]
    out["events"] = [e for e in out["events"] if isinstance(e, dict)]
    out["url_errors"] = [e for e in out["url_errors"] if isinstance(e, dict)]
    return out


def _point(p):
    return (isinstance(p, dict) and _num(p.get("t")) and _num(p.get("mbps")) and _int(p.get("bytes"))
            and _str(p.get("time")))


def paths(data_dir):
    """The live copy (tmpfs, rewritten every interval) and the durable one in data/."""
    return [store.runtime_dir(data_dir) / NAME, data_dir / NAME]


class Reader:
    """The server's view of downloader.json: the newer of its two copies, parsed once per change."""

    def __init__(self, data_dir):
        self._files = [store.CachedReader(p) for p in dict.fromkeys(paths(data_dir))]
        self._cache = (None, normalize(None))

    def read(self):
        docs = [f.read() for f in self._files]
        raw = max((d for d in docs if d is not None), default=None,
                  key=lambda d: d.get("updated_at") if isinstance(d.get("updated_at"), str) else "")
        if raw is not self._cache[0]:
            self._cache = (raw, normalize(raw))
        return self._cache[1]


def effective(doc, proc, pid_alive):
    """(doc, status, reason) from the file and the supervisor's view of the process.

    The file is the downloader's word; the process table says whether that word is still true:
    a just-spawned child has not written yet, and a child that died can no longer say so.
    """
    status, reason, state = Status(doc["status"]), doc["reason"], (proc or {}).get("state")
    if state in UP and doc["pid"] != proc.get("pid"):
        return normalize(None), Status.CONNECTING, None  # just spawned; its first write is on the way
    if state == ProcessState.STOPPING.value:
        return doc, Status.STOPPING, reason
    if status in LIVE and state is not None and state not in UP:
        if proc.get("exit"):
            return doc, Status.ERROR, f"downloader ended unexpectedly ({proc['exit']})"
        return doc, Status.STOPPED, "interrupted: the server restarted"
    if status in LIVE and state is None and doc["pid"] and not pid_alive(doc["pid"]):
        return doc, Status.STOPPED, "interrupted"
    return doc, status, reason
