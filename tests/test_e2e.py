"""End to end: the real server.py, real children, a real local HTTP server as the ISP."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import requests

from conftest import ROOT
from harness import pids_alive, wait_for


def session_bytes(server):
    return server.stats()["total_bytes"]


def test_server_serves_dashboard_and_has_a_collector_within_2_seconds(server):
    t0 = time.monotonic()
    s = server()
    wait_for(lambda: "collector" in s.children(), 2, "collector child")
    assert time.monotonic() - t0 < 4
    assert b'data-testid="status"' in s.get("/").content
    wait_for(lambda: s.get("/healthz").status_code == 200, 5, "healthy")


def test_start_pause_resume_stop_path(server, fake_isp):
    isp = fake_isp(rate_mbps=400)
    s = server(test_urls=[isp.url()])
    assert s.post("/api/start").json() == {"status": "connecting"}
    wait_for(lambda: "downloader" in s.children(), 5, "downloader process")
    wait_for(lambda: s.stats()["speed_mbps"] > 0, 5, "speed > 0")
    assert s.post("/api/pause").json() == {"status": "paused"}
    wait_for(lambda: s.stats()["status"] == "paused", 3, "paused")
    time.sleep(1.5)  # let in-flight reads settle
    b1 = session_bytes(s)
    time.sleep(2)
    assert session_bytes(s) == b1, "bytes kept growing while paused"
    assert s.post("/api/resume").json() == {"status": "running"}
    wait_for(lambda: session_bytes(s) > b1, 5, "bytes growing after resume")
    pid = s.children()["downloader"].pid
    assert s.post("/api/stop").status_code == 200
    wait_for(lambda: not pids_alive([pid]), 5, "downloader gone")
    wait_for(lambda: s.stats()["status"] == "stopped", 3, "status stopped")
    r = s.post("/api/pause")
    assert r.status_code == 409


def test_sigterm_to_server_leaves_no_child_alive(server, fake_isp):
    isp = fake_isp(rate_mbps=100)
    s = server(test_urls=[isp.url()])
    s.post("/api/start")
    wait_for(lambda: s.stats()["speed_mbps"] > 0, 5, "a running session")
    pids = [p.pid for p in s.children().values()]
    assert len(pids) == 2
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0
    assert pids_alive(pids) == []
    assert json.loads((s.data_dir / "downloader.json").read_text())["status"] == "stopped"


def test_sigkill_to_server_children_exit_within_5_seconds(server, fake_isp):
    isp = fake_isp(rate_mbps=100)
    s = server(test_urls=[isp.url()])
    s.post("/api/start")
    wait_for(lambda: len(s.children()) == 2, 5, "both children")
    pids = [p.pid for p in s.children().values()]
    s.proc.kill()
    s.proc.wait()
    t0 = time.monotonic()
    wait_for(lambda: not pids_alive(pids), 5, "children to exit after parent SIGKILL")
    assert time.monotonic() - t0 < 5


def test_data_files_are_valid_json_at_every_moment(server, fake_isp):
    isp = fake_isp(rate_mbps=200)
    s = server(test_urls=[isp.url()], update_interval_seconds=0.1)
    s.post("/api/start")
    live = json.loads(s.get("/api/system").text)  # where the live file is
    from datacap.store import runtime_dir
    paths = [s.data_dir / "downloader.json", s.data_dir / "usage.json", runtime_dir(s.data_dir) / "collector.json"]
    wait_for(lambda: all(p.exists() for p in paths), 5, "all three files")
    errors, reads, stop = [], [0], time.monotonic() + 6
    def hammer(path):
        while time.monotonic() < stop:
            try:
                json.loads(path.read_bytes())
                reads[0] += 1
            except ValueError as exc:
                errors.append((path.name, exc))
    threads = [threading.Thread(target=hammer, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and reads[0] > 1000 and live["processes"]["collector"]["state"] in ("starting", "running")


def test_limit_gb_finishes_with_exit_0(tmp_path, fake_isp):
    isp = fake_isp()  # unthrottled loopback
    r = subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--data-dir", str(tmp_path), "--url", isp.url(),
                        "--limit-gb", "0.3", "--streams", "2"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "downloader.json").read_text())
    assert d["status"] == "finished" and "session limit" in d["reason"]
    assert abs(d["total_bytes"] - 0.3e9) / 0.3e9 < 0.01


def test_failing_urls_rotate_and_count_as_errors_not_speed(server, fake_isp):
    bad = fake_isp()
    bad.link.update(fail_status=503)
    good = fake_isp(rate_mbps=100)
    s = server(test_urls=[bad.url(), "http://127.0.0.1:9/refused", good.url()])
    s.post("/api/start")
    st = wait_for(lambda: (lambda x: x if x["speed_mbps"] > 50 and x["last_error"] else None)(s.stats()), 15,
                  "speed from the good URL and an error recorded")
    assert st["error_count"] >= 1 and st["throttle_events"] == []


def test_downloader_killed_shows_error_and_keeps_session_bytes(server, fake_isp):
    isp = fake_isp(rate_mbps=200)
    s = server(test_urls=[isp.url()])
    s.post("/api/start")
    wait_for(lambda: s.stats()["total_bytes"] > 10_000_000, 10, "some bytes")
    s.children()["downloader"].kill()
    t0 = time.monotonic()
    st = wait_for(lambda: (lambda x: x if x["status"] == "error" else None)(s.stats()), 3, "error status")
    assert time.monotonic() - t0 < 3
    assert "SIGKILL" in st["reason"] and st["total_bytes"] > 10_000_000
    assert s.post("/api/start").status_code == 200  # and the user can start again


def test_collector_killed_is_restarted(server):
    s = server()
    wait_for(lambda: s.get("/api/system").json()["processes"]["collector"]["state"] == "running", 6, "collector running")
    old = s.children()["collector"].pid
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (s.children().get("collector") or None) and s.children()["collector"].pid != old and
                   s.children()["collector"].pid, 6, "collector restarted")
    procs = s.get("/api/system").json()["processes"]
    assert procs["collector"]["restarts"] == 1 and new != old


def test_second_server_on_the_same_data_dir_refuses(server):
    s = server()
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(s.config_path), "--data-dir",
                        str(s.data_dir), "--port", "1", "--no-browser"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "already using" in r.stderr


def test_second_collector_on_the_same_data_dir_refuses(server):
    s = server()
    wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
    r = subprocess.run([sys.executable, str(ROOT / "collector.py"), "--config", str(s.config_path), "--data-dir",
                        str(s.data_dir)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 3 and "already counting" in r.stderr  # after waiting for it to exit, in case it was


def test_config_put_bad_changes_nothing_good_applies_without_restart(server):
    s = server(data_cap_gb=100)
    wait_for(lambda: s.get("/healthz").status_code == 200, 5, "collector counting")
    before = s.config_path.read_bytes()
    r = requests.put(s.url + "/api/config", json={"data_cap_gb": "lots", "billing_day": 0}, timeout=5)
    assert r.status_code == 400 and set(r.json()["fields"]) == {"data_cap_gb", "billing_day"}
    assert s.config_path.read_bytes() == before
    server_pid = s.proc.pid
    r = requests.put(s.url + "/api/config", json={"data_cap_gb": 250, "alert_thresholds_percent": [80]}, timeout=5)
    assert r.status_code == 200
    assert json.loads(s.config_path.read_text())["data_cap_gb"] == 250
    assert s.get("/api/usage").json()["cap_bytes"] == 250 * 10**9
    wait_for(lambda: "collector INFO config reloaded" in s.log(), 5, "the collector to reload on SIGHUP")
    assert s.proc.pid == server_pid and s.proc.poll() is None


def test_stop_pressed_while_the_downloader_is_still_starting_ends_it_cleanly(server, fake_isp):
    isp = fake_isp(rate_mbps=100)
    s = server(test_urls=[isp.url()])
    assert s.post("/api/start").status_code == 200
    assert s.post("/api/stop").status_code == 200  # within milliseconds: the child is still importing
    wait_for(lambda: "downloader (pid" in s.log() and "ended" in s.log(), 8, "the downloader to end")
    assert "downloader (pid" in s.log() and "ended: exit code 0" in s.log(), s.log()
    st = wait_for(lambda: (lambda x: x if x["status"] == "stopped" else None)(s.stats()), 3, "stopped")
    assert st["reason"] == "stopped by user"


def test_collector_blocked_by_a_hand_run_one_backs_off_with_its_reason_and_takes_over(tmp_path):
    import filelock
    from harness import Server
    s = Server(tmp_path / "s")
    s.data_dir.mkdir(parents=True)
    held = filelock.FileLock(str(s.data_dir / "collector.lock"))
    held.acquire()  # e.g. someone runs collector.py by hand on the same folder
    try:
        s._log = open(s.log_path, "ab")
        s.proc = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(s.config_path),
                                   "--data-dir", str(s.data_dir), "--no-browser"], stdout=s._log, stderr=subprocess.STDOUT)
        proc = wait_for(lambda: (lambda p: p if p["state"] == "backoff" else None)(
            s.get("/api/system").json()["processes"]["collector"]), 30, "collector in BACKOFF")
        assert "already counting" in proc["last_error"]
        assert s.get("/healthz").status_code == 503
        held.release()  # the hand-run one ends: the server's collector takes over, never FATAL
        wait_for(lambda: s.get("/healthz").status_code == 200, 30, "collector counting")
    finally:
        s.stop()
        if held.is_locked:
            held.release()


def test_a_hand_run_downloader_holds_the_folder_and_start_names_its_pid(server, fake_isp):
    isp = fake_isp(rate_mbps=20)
    s = server(test_urls=[isp.url()])
    by_hand = subprocess.Popen([sys.executable, str(ROOT / "downloader.py"), "--config", str(s.config_path),
                                "--data-dir", str(s.data_dir)], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (s.data_dir / "downloader.pid").exists(), 10, "the hand-run downloader to hold the lock")
        r = s.post("/api/start")
        assert r.status_code == 409 and f"(pid {by_hand.pid})" in r.json()["error"]
        assert "downloader" not in s.children()
        second = subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--config", str(s.config_path),
                                 "--data-dir", str(s.data_dir)], capture_output=True, text=True, timeout=20)
        assert second.returncode == 3 and f"(pid {by_hand.pid})" in second.stderr
    finally:
        by_hand.terminate()
        by_hand.wait(10)
    wait_for(lambda: s.post("/api/start").status_code == 200, 10, "Start once the hand-run one has gone")
