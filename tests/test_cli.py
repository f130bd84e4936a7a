"""Command-line niceties: --version, environment overrides, clear errors."""
import os
import subprocess
import sys

import requests

from conftest import ROOT
from harness import free_port, wait_for, write_config


def test_version():
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("datacap ")


def test_environment_overrides_port_and_data_dir(tmp_path):
    cfg = write_config(tmp_path)
    port = free_port()
    env = dict(os.environ, DATACAP_PORT=str(port), DATACAP_DATA_DIR=str(tmp_path / "envdata"), DATACAP_CONFIG=str(cfg))
    proc = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--no-browser"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok, 10, "server on DATACAP_PORT")
        assert (tmp_path / "envdata" / "usage.json").exists()
    finally:
        proc.terminate()
        proc.wait(15)


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = write_config(tmp_path, port=s.getsockname()[1])
        r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(cfg), "--data-dir",
                            str(tmp_path / "d"), "--no-browser"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "cannot listen on" in r.stderr and "Traceback" not in r.stderr


def test_browser_opens_only_for_a_person_at_a_desktop(monkeypatch):
    from datacap import serve as server
    monkeypatch.setattr(server.sys, "platform", "linux")
    monkeypatch.setattr(server.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(server.sys.stdout, "isatty", lambda: True, raising=False)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "INVOCATION_ID"):
        monkeypatch.delenv(var, raising=False)
    assert not server.interactive()  # SSH without a screen: no console browser in the terminal
    monkeypatch.setenv("DISPLAY", ":0")
    assert server.interactive()
    monkeypatch.setenv("INVOCATION_ID", "abc")  # under systemd
    assert not server.interactive()
