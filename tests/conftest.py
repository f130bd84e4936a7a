import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_isp import FakeISP  # noqa: E402
from harness import Server  # noqa: E402
from datacap.store import runtime_dir  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


def need(ok, reason):
    """Skip with a clear reason on a developer machine; in CI a missing capability is a failure."""
    if not ok:
        if IN_CI:
            pytest.fail(f"CI must be able to run this test: {reason}")
        pytest.skip(reason)


def have_root_networking():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


@pytest.fixture(autouse=True)
def no_live_files_left(tmp_path):
    """After each test, the tmpfs folders of the data folders it made (store.runtime_dir) are removed:
    /dev/shm is memory, and a full run would leave hundreds. Only this test's own, so parallel-safe."""
    yield
    for folder in [tmp_path, *(p for p in tmp_path.rglob("*") if p.is_dir() and not p.is_symlink())]:
        live = runtime_dir(folder)
        if live.parent == Path("/dev/shm"):  # not data_dir itself, nor a RUNTIME_DIRECTORY
            shutil.rmtree(live, ignore_errors=True)


@pytest.fixture
def private_runtime_dir(tmp_path, monkeypatch):
    """The downloader's live copy goes to a folder of this test's own, not /dev/shm."""
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()


@pytest.fixture
def fake_isp():
    isps = []

    def make(**link):
        isp = FakeISP(**link).start()
        isps.append(isp)
        return isp
    yield make
    for isp in isps:
        isp.close()


@pytest.fixture
def server(tmp_path):
    servers = []

    def make(**config):
        s = Server(tmp_path / f"s{len(servers)}", **config)
        servers.append(s)
        return s.start()
    yield make
    for s in servers:
        pids = [c.pid for c in s.children().values()] if s.proc and s.proc.poll() is None else []
        s.stop()  # its tmpfs folder goes in no_live_files_left
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
