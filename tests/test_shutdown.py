"""The real server as a supervisor that never wedges: signals, shutdown order, hung and orphaned children."""
import json
import os
import signal
import time

import psutil
import requests

from harness import Server, wait_for


def collector_state(s):
    return s.get("/api/system").json()["processes"]["collector"]


def test_sighup_reloads_the_server_config_and_passes_it_to_the_children(server):
    s = server(data_cap_gb=100)
    wait_for(lambda: s.get("/healthz").status_code == 200, 10, "collector counting")
    cfg = json.loads(s.config_path.read_text())
    s.config_path.write_text(json.dumps({**cfg, "data_cap_gb": 321}))
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.get("/api/usage").json()["cap_bytes"] == 321 * 10**9, 5, "the new cap served")
    wait_for(lambda: "collector INFO config reloaded" in s.log(), 5, "the collector reloading")
    assert s.proc.poll() is None
    s.config_path.write_text("{not json")  # a bad file keeps the running settings
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in s.log(), 5, "the refusal logged")
    assert s.proc.poll() is None and s.get("/api/usage").json()["cap_bytes"] == 321 * 10**9


def test_two_hundred_sigterms_in_a_tight_loop_never_hang_the_server(server):
    s = server()
    wait_for(lambda: s.get("/healthz").status_code == 200, 10, "collector counting")
    children = [p.pid for p in s.children().values()]
    for _ in range(200):
        try:
            os.kill(s.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            break
    assert s.proc.wait(20) == 0
    wait_for(lambda: not [p for p in children if psutil.pid_exists(p)
                          and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], 10, "children gone")


def test_start_after_sigterm_is_refused_or_finds_the_port_closed(server, fake_isp):
    isp = fake_isp(rate_mbps=20)
    s = server(test_urls=[isp.url()])
    assert s.post("/api/start").status_code == 200
    downloader = wait_for(lambda: s.children().get("downloader"), 10, "a downloader")
    os.kill(downloader.pid, signal.SIGSTOP)  # a stuck test keeps the shutdown going for STOP_TIMEOUT
    before = {c.pid for c in psutil.Process(s.proc.pid).children()}  # no cmdline reads: an exiting child is a zombie
    s.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping: listener first" in s.log(), 5, "shutdown begun")
    spawned = []
    for _ in range(20):
        try:
            r = requests.post(s.url + "/api/start", timeout=2)
            assert r.status_code in (409, 503), r.text
        except requests.ConnectionError:
            pass
        spawned += [p.pid for p in psutil.Process(s.proc.pid).children() if p.pid not in before] \
            if s.proc.poll() is None else []
        time.sleep(0.1)
    assert spawned == []
    assert s.proc.wait(20) == 0
    assert not psutil.pid_exists(downloader.pid) or psutil.Process(downloader.pid).status() == psutil.STATUS_ZOMBIE


def test_a_sigstopped_collector_is_killed_and_restarted_within_40_s(server):
    s = server()
    wait_for(lambda: s.get("/healthz").status_code == 200, 10, "collector counting")
    old = s.children()["collector"]
    stopped_at = time.monotonic()
    os.kill(old.pid, signal.SIGSTOP)
    wait_for(lambda: collector_state(s)["pid"] not in (None, old.pid), 40, "a new collector")
    wait_for(lambda: s.get("/healthz").status_code == 200, 40 - (time.monotonic() - stopped_at), "counting again")
    assert not psutil.pid_exists(old.pid) or psutil.Process(old.pid).status() == psutil.STATUS_ZOMBIE
    assert "no heartbeat" in s.log()


def test_ten_restarts_right_after_kill_9_all_end_with_a_counting_collector(tmp_path):
    s = Server(tmp_path / "s")
    try:
        for i in range(10):
            s.start()
            wait_for(lambda: collector_state(s)["state"] == "running" and s.get("/healthz").status_code == 200,
                     30, f"a counting collector after restart {i}")
            s.proc.kill()
            s.proc.wait()
            s._log.close()
    finally:
        s.stop()
        for p in psutil.process_iter(["cmdline"]):
            if str(s.data_dir) in " ".join(p.info["cmdline"] or []):
                p.kill()
