"""Disk full and read-only data folders, on a real tiny tmpfs (root): nothing torn, errors shown, recovery."""
import errno
import json
import os
import subprocess

import pytest

from datacap import store as jsonstore
from conftest import need
from test_collector import Machine, used


@pytest.fixture
def small_disk(tmp_path):
    need(os.geteuid() == 0, "needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder):
    path = folder / "filler"
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return path


def test_disk_full_keeps_the_previous_ledger_and_recovers(small_disk, tmp_path):
    m = Machine()
    c = m.collector(small_disk)
    c.live_path = tmp_path / "collector.json"  # the live file's tmpfs is not the one that is full
    c.start()
    good = (small_disk / "usage.json").read_bytes()
    filler = fill(small_disk)
    m.advance(1, rx=1000)
    c.flush(m.t, m.wall)
    assert "No space left" in c.last_error
    m.advance(1)
    c.tick()  # the next tick shows the error in the live file
    assert (small_disk / "usage.json").read_bytes() == good  # the old file, whole
    assert not list(small_disk.glob(".tmp-*"))  # no half-written temp file left behind
    assert json.loads(c.live_path.read_text())["last_error"] == c.last_error  # surfaced
    filler.unlink()
    c.flush(m.t, m.wall)
    assert c.last_error is None
    assert sum(json.loads((small_disk / "usage.json").read_text())["totals"]["eth0"]) == 1000 == used(c)


def test_read_only_data_folder_keeps_the_file_and_recovers(small_disk):
    jsonstore.write_json_atomic(small_disk / "downloader.json", {"status": "running", "total_bytes": 1})
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(OSError) as err:
            jsonstore.write_json_atomic(small_disk / "downloader.json", {"status": "running", "total_bytes": 2})
        assert err.value.errno == errno.EROFS
        assert jsonstore.read_json(small_disk / "downloader.json")["total_bytes"] == 1
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    jsonstore.write_json_atomic(small_disk / "downloader.json", {"status": "running", "total_bytes": 3})
    assert jsonstore.read_json(small_disk / "downloader.json")["total_bytes"] == 3


def test_failed_write_removes_its_temp_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    jsonstore.write_json_atomic(tmp_path / "x.json", {"v": 1})

    def boom(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        jsonstore.write_json_atomic(tmp_path / "x.json", {"v": 2})
    assert jsonstore.read_json(tmp_path / "x.json") == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_leftover_temp_files_are_swept(tmp_path):
    stale = tmp_path / ".tmp-usage.json.abc"
    stale.write_text("{")
    os.utime(stale, (0, 0))
    fresh = tmp_path / ".tmp-usage.json.def"
    fresh.write_text("{")
    jsonstore.sweep_temp_files(tmp_path)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a live writer


def test_written_files_are_world_readable(tmp_path):
    jsonstore.write_json_atomic(tmp_path / "x.json", {"v": 1})
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644
