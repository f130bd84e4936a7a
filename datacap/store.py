"""Atomic JSON files, one writer per file and lock-free readers; single-instance locks per data folder."""
import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import filelock
import psutil

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


def _mode_for(path, private):
    """The file keeps its mode (0600 stays 0600); a new file is 0644; a private one is never wider than 0600."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o644
    return mode & 0o600 if private else mode


def write_json_atomic(path, obj, fsync=True, private=False, indent=None):
    """Write obj to path so a reader sees the old file or the new one, never a mix.

    private=True (a file holding a secret): the file is never readable by group or others.
    indent: pretty-printed for a file people edit (config.json), else compact.
    """
    path = Path(path)
    data = (json.dumps(obj, separators=(",", ":"), allow_nan=False) if indent is None
            else json.dumps(obj, indent=indent, allow_nan=False) + "\n").encode()
    mode = _mode_for(path, private)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def parse_json(raw):
    """A JSON object from bytes; ValueError for anything else (deep nesting included)."""
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def read_json(path):
    """Return the parsed file, or None when it is missing, empty or invalid ("no data yet")."""
    try:
        with open(path, "rb") as f:
            return parse_json(f.read())
    except (OSError, ValueError):
        return None


def sweep_temp_files(folder, max_age_s=60.0):
    """Remove temp files a crashed writer left behind."""
    now = time.time()
    for p in Path(folder).glob(TEMP_PREFIX + "*"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
        except FileNotFoundError:
            pass


class CachedReader:
    """Re-parse a JSON file only when its (mtime, size, inode) changes."""

    def __init__(self, path):
        self.path = Path(path)
        self._cache = (None, None)  # (key, value), replaced whole: safe across request threads

    def read(self):
        try:
            st = os.stat(self.path)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            key = None
        if key != self._cache[0]:
            self._cache = (key, read_json(self.path) if key else None)
        return self._cache[1]


def _runtime_problem(st):
    """Why a folder (its lstat) must not hold our live files, or None when it is ours."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by us (uid {os.getuid()})"
    return None


def _ours(path):
    """True when path is a real folder owned by us; tightens it to 0700 if it was wider."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if _runtime_problem(st):
        return False
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return True


_warned = set()


def _fresh_runtime_dir(folder, why):
    """A private folder beside a squatted one: the first (by name) of ours, made if there is none.

    Every process picks the same one, so the collector writes where the server reads.
    """
    if folder not in _warned:
        _warned.add(folder)
        log.warning("runtime folder %s %s: using a fresh private folder beside it", folder, why)
    for _ in range(2):
        mine = sorted(p for p in folder.parent.glob(folder.name + "-*") if _ours(p))
        if mine:
            return mine[0]
        tempfile.mkdtemp(prefix=folder.name + "-", dir=folder.parent)  # 0700, a name nobody could predict
    return None


def runtime_dir(data_dir, create=False):
    """Folder for files rewritten every second: tmpfs when there is one, else data_dir.

    The tmpfs folder is used only when it is ours: a real folder (no symlink), owned by this user,
    0700. A folder another user made there first (to feed us fake figures) is passed over for a
    fresh private one. Only writers create the usual folder; readers look for the file here, then
    in data_dir.
    """
    data_dir = Path(data_dir).resolve()
    base = os.environ.get("RUNTIME_DIRECTORY")
    if base:
        return Path(base.split(":")[0])
    if not (sys.platform.startswith("linux") and os.path.isdir("/dev/shm")):
        return data_dir
    tag = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    folder = Path("/dev/shm") / f"datacap-{os.getuid()}-{tag}"
    try:
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            if not create:
                return folder
            folder.mkdir(mode=0o700, exist_ok=True)  # another of our processes may be first
            st = os.lstat(folder)
        why = _runtime_problem(st)
        if why is None and _ours(folder):
            return folder
        return _fresh_runtime_dir(folder, why) or data_dir
    except OSError as exc:
        log.warning("no tmpfs runtime folder (%s): live files go to %s", exc, data_dir)
        return data_dir


def remove_runtime_dir(data_dir):
    """After a clean stop: the tmpfs folder of this data folder goes, unless a collector or downloader run by
    hand still writes there. A folder systemd made ($RUNTIME_DIRECTORY) is systemd's to remove."""
    folder = runtime_dir(data_dir)
    if os.environ.get("RUNTIME_DIRECTORY") or folder == Path(data_dir).resolve():
        return
    if any(InstanceLock(data_dir, role).holder() is not None for role in ("collector", "downloader")):
        return
    for p in folder.glob("*"):
        p.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # something appeared meanwhile: it stays


class InstanceLock:
    """One process per role and data folder: a FileLock on `<role>.lock`, the holder's pid in `<role>.pid`."""

    def __init__(self, data_dir, role):
        self.lock = filelock.FileLock(str(Path(data_dir) / f"{role}.lock"))
        self.pid_path = Path(data_dir) / f"{role}.pid"

    def acquire(self, wait_s=0.0):
        """True once held; waits up to wait_s (a holder that is exiting releases it then)."""
        try:
            self.lock.acquire(timeout=wait_s)
        except filelock.Timeout:
            return False
        try:
            self.pid_path.write_text(str(os.getpid()))
        except OSError:
            pass  # the pid only names the holder in messages
        return True

    @property
    def is_held(self):
        return self.lock.is_locked

    def release(self):
        if self.lock.is_locked:
            self.pid_path.unlink(missing_ok=True)
            self.lock.release()

    def holder(self):
        """The pid of another live process holding the lock, or None when it is free."""
        probe = filelock.FileLock(self.lock.lock_file, is_singleton=False) if not self.lock.is_locked else None
        if probe is None:
            return None  # we hold it
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:  # (a TimeoutError, so an OSError: caught first)
            try:
                pid = int(self.pid_path.read_text())
            except (OSError, ValueError):
                return -1  # held, by a process that has not written its pid yet
            return pid if psutil.pid_exists(pid) else -1
        except OSError:
            return None  # no data folder yet: nobody holds it
        probe.release()
        return None

    def holder_text(self):
        """'(pid N)' naming the holder when it is known, for messages."""
        pid = self.holder()
        return f"(pid {pid})" if pid and pid > 0 else "(pid unknown)"


class ItemsFile:
    """A bounded list of undoable records in one JSON file ({"items": [...]}), e.g. ISP readings, top-ups.

    One writer (the server, under its state lock); readers use items() on what read_json returned.
    """

    def __init__(self, path, kept):
        self.path, self.kept = Path(path), kept

    @staticmethod
    def items(doc):
        found = (doc or {}).get("items")
        return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []

    @staticmethod
    def of_line(doc, line, first):
        """The records of one line ({"items": [...]}); a record from before lines is the first line's."""
        return {"items": [x for x in ItemsFile.items(doc) if (x.get("line") or first) == line]}

    def add(self, item):
        write_json_atomic(self.path, {"items": (self.items(read_json(self.path)) + [item])[-self.kept:]})
        return item

    def undo(self, item_id):
        """Mark one record undone; the record, or None when there is no such id."""
        found = self.items(read_json(self.path))
        match = [x for x in found if x.get("id") == item_id]
        if not match:
            return None
        match[0]["undone"] = True
        write_json_atomic(self.path, {"items": found})
        return match[0]
