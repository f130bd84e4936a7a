"""Home Assistant over MQTT, against Debian's mosquitto on loopback, observed with mosquitto_sub."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import need
from datacap import store
from datacap.measure import history
from datacap.measure.probe import file as probe_file
from datacap.notify import discovery, mqtt
from harness import free_port, stop_process, wait_for

NODE = discovery.node_id()
BASE = f"datacap/{NODE}"


class Broker:
    """mosquitto on a free loopback port with its own config; optional password file."""

    def __init__(self, folder, users=None):
        need(shutil.which("mosquitto") and shutil.which("mosquitto_sub"), "Debian's mosquitto and mosquitto-clients")
        self.folder, self.port, self.proc = folder, free_port(), None
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to the mosquitto user, who cannot read tmp_path
        if users:
            pw = folder / "passwords"
            for name, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", *([] if pw.exists() else ["-c"]), str(pw), name, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        self.log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=self.log, stderr=self.log)

        def up():
            assert self.proc.poll() is None, (self.folder / "mosquitto.log").read_text()
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_for(up, 10, "mosquitto to listen")
        return self

    def stop(self):
        stop_process(self.proc, 5)
        if self.proc:
            self.log.close()

    def settings(self, **extra):
        return {"host": "127.0.0.1", "port": self.port, **extra}


class Sub:
    """mosquitto_sub on '#': every message as (arrival time, retained, topic, payload)."""

    def __init__(self, broker, user=None):
        auth = ["-u", user[0], "-P", user[1]] if user else []
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "#",
                                      "-F", "%r %t %p", *auth], stdout=subprocess.PIPE, text=True)
        self.messages = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            retained, topic, payload = (line.rstrip("\n").split(" ", 2) + [""])[:3]
            self.messages.append((time.monotonic(), retained == "1", topic, payload))

    def last(self, topic):
        found = [m[3] for m in self.messages if m[2] == topic]
        return found[-1] if found else None

    def state(self):
        s = self.last(f"{BASE}/state")
        return json.loads(s) if s else None

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def broker(tmp_path):
    made = []

    def make(**kw):
        made.append(Broker(tmp_path / f"broker{len(made)}", **kw).start())
        return made[-1]
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def sub():
    made = []

    def make(b, **kw):
        made.append(Sub(b, **kw))
        return made[-1]
    yield make
    for s in made:
        s.close()


def configs_seen(watch):
    out = {}
    for component, object_id in [(c, o) for o, (c, _, _) in discovery.ENTITIES.items()]:
        payload = watch.last(f"homeassistant/{component}/{NODE}/{object_id}/config")
        if not payload:
            return None
        out[object_id] = json.loads(payload)
    return out


def test_home_assistant_receives_every_discovery_config_and_state(broker, sub, server):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings(), data_cap_gb=1)
    configs = wait_for(lambda: configs_seen(watch), 10, "every discovery config")
    assert watch.last(f"{BASE}/availability") == "online"
    state = wait_for(watch.state, 10, "the first state")
    assert set(state) == set(discovery.ENTITIES) | {"cycle_start_at", "today_start_at"}  # + the last_reset values
    for object_id, c in configs.items():
        assert c["state_topic"] == f"{BASE}/state" and c["availability_topic"] == f"{BASE}/availability"
        assert c["value_template"] == discovery.ENTITIES[object_id][2].get("value_template",
                                                                            f"{{{{ value_json.{object_id} }}}}")
        assert c["device"]["identifiers"] == [f"datacap_{NODE}"]
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    assert configs["cycle_used"]["device_class"] == "data_size" and configs["cycle_used"]["unit_of_measurement"] == "GB"
    assert configs["cycle_used"]["state_class"] == "total"  # it goes down after an ISP reading below the count
    assert configs["throttled"]["device_class"] == "problem"
    late = sub(b)  # a Home Assistant that starts later gets everything from the broker: all retained
    wait_for(lambda: configs_seen(late) and late.state(), 10, "retained configs and state for a late subscriber")
    assert all(m[1] for m in late.messages) and late.last(f"{BASE}/availability") == "online"
    assert not any(m[2].startswith("homeassistant/button/") and m[3] for m in watch.messages)  # commands off
    s.post("/api/usage/adjust", json={"used_gb": 0.6})
    state = wait_for(lambda: (watch.state() or {}).get("cycle_used") == 0.6 and watch.state(), 10,
                     "the new cycle figure on the state topic")
    assert state["cycle_percent"] == 60.0 and state["cycle_remaining"] == 0.4 and state["test_status"] == "idle"
    assert state["last_probe_speed"] is None  # no probe yet: Home Assistant shows "unknown"
    probe = {"id": "p1", "time": "2026-11-24T10:00:00+00:00", "cycle_start": "2026-11-01", "cycle_used_bytes": 0,
             "mbps": 87.44, "bytes": 5_000_000, "quiet": True}
    store.write_json_atomic(s.data_dir / probe_file.NAME, {"probes": [probe], "findings": []})  # as the probe child
    wait_for(lambda: (watch.state() or {}).get("last_probe_speed") == 87.4, 10, "the last probe's speed")
    assert s.get("/api/system").json()["mqtt"]["connected"] is True
    s.stop()  # a clean stop sends no last will: datacap says offline itself
    wait_for(lambda: watch.last(f"{BASE}/availability") == "offline", 5, "offline after SIGTERM")


def test_availability_reads_offline_within_the_keep_alive_after_kill_9(broker, sub, server):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings())
    wait_for(lambda: watch.last(f"{BASE}/availability") == "online", 10, "online")
    s.proc.kill()
    t0 = time.monotonic()
    wait_for(lambda: watch.last(f"{BASE}/availability") == "offline", mqtt.KEEPALIVE_S * 1.5 + 1, "the last will")
    print(f"availability offline {time.monotonic() - t0:.2f} s after kill -9 (keep-alive {mqtt.KEEPALIVE_S} s)")


def test_a_broker_restart_is_survived_and_states_flow_again(broker, sub, server):
    b = broker()
    s = server(mqtt=b.settings(), data_cap_gb=1)
    wait_for(lambda: s.get("/api/system").json()["mqtt"]["connected"], 10, "connected")
    b.stop()
    wait_for(lambda: not s.get("/api/system").json()["mqtt"]["connected"], 10, "the loss to be shown")
    t0 = time.monotonic()
    assert s.get("/api/stats").ok and s.get("/api/usage").ok
    assert time.monotonic() - t0 < 1.0  # the API never waits on the broker
    s.post("/api/usage/adjust", json={"used_gb": 0.25})
    b.start()  # same port; persistence off, so it has forgotten every retained message
    t0 = time.monotonic()
    watch = sub(b)
    wait_for(lambda: configs_seen(watch), 15, "discovery configs published again")
    wait_for(lambda: (watch.state() or {}).get("cycle_used") == 0.25, 15, "the state after the restart")
    print(f"states flow again {time.monotonic() - t0:.1f} s after the broker came back")
    assert watch.last(f"{BASE}/availability") == "online"
    assert s.get("/api/system").json()["mqtt"]["connects"] >= 2


def test_a_wrong_password_is_shown_in_the_system_api_and_is_not_fatal(broker, server):
    b = broker(users={"ha": "right-password"})
    s = server(mqtt=b.settings(username="ha", password="wrong-password"))
    status = wait_for(lambda: (m := s.get("/api/system").json()["mqtt"])["failures"] >= 2 and m, 15,
                      "refusals, retried")
    assert status["connected"] is False and "refused" in status["last_error"].lower()
    assert "not authori" in status["last_error"].lower() or "password" in status["last_error"].lower()
    assert "wrong-password" not in s.get("/api/system").text
    assert s.get("/healthz").status_code == 200 and s.proc.poll() is None
    print("wrong password shown as:", status["last_error"])
    fixed = requests.put(s.url + "/api/config", json={"mqtt": b.settings(username="ha", password="right-password")},
                         timeout=5)
    assert fixed.ok, fixed.text
    status = wait_for(lambda: (m := s.get("/api/system").json()["mqtt"])["connected"] and m, 15,
                      "the corrected password to be used without a restart")
    assert status["last_error"] is None


def test_with_commands_on_a_command_message_starts_and_stops_a_test(broker, sub, server, fake_isp):
    isp = fake_isp(rate_mbps=40, jitter=0.3)  # the speed changes every second, so the state would too
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings(commands=True), test_urls=[isp.url()], streams=1)
    wait_for(lambda: watch.last(f"homeassistant/button/{NODE}/start/config"), 10, "the Start button")
    button = json.loads(watch.last(f"homeassistant/button/{NODE}/start/config"))
    assert button["command_topic"] == f"{BASE}/command" and button["payload_press"] == "start"

    def press(action):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-t", f"{BASE}/command", "-m", action],
                       check=True, timeout=5)
    press("start")
    wait_for(lambda: s.stats()["status"] == "running", 10, "the test to start")
    wait_for(lambda: (watch.state() or {}).get("test_status") == "running", 10, "running on the state topic")
    mark = time.monotonic()
    time.sleep(16)  # the speed changes every second: states must still come at most every few seconds
    times = [m[0] for m in watch.messages if m[2] == f"{BASE}/state" and m[0] > mark]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"{len(times)} states, shortest gap {min(gaps):.2f} s")
    assert len(times) >= 3 and min(gaps) >= mqtt.STATE_MIN_INTERVAL_S - 1.5
    press("stop")
    wait_for(lambda: s.stats()["status"] == "stopped", 15, "the test to stop")
    wait_for(lambda: (watch.state() or {}).get("test_status") == "stopped", 10, "stopped on the state topic")


def test_a_frozen_server_reads_offline_after_the_keep_alive_and_online_when_it_thaws(broker, sub, server):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings())
    wait_for(lambda: watch.last(f"{BASE}/availability") == "online", 10, "online")
    s.proc.send_signal(signal.SIGSTOP)  # like a host that lost power: the socket stays open, no pings come
    t0 = time.monotonic()
    try:
        # 1.5 keep-alives: 22.3 s measured on an idle machine, 27.8 s during a full parallel run
        wait_for(lambda: watch.last(f"{BASE}/availability") == "offline", mqtt.KEEPALIVE_S * 1.5 + 15,
                 "the broker to give up on the silent client and publish its last will")
        print(f"availability offline {time.monotonic() - t0:.1f} s after the server froze "
              f"(keep-alive {mqtt.KEEPALIVE_S} s)")
    finally:
        s.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: watch.last(f"{BASE}/availability") == "online", 15, "online again after it thaws")


def kept_throttled_test():
    """A finished test as history.json keeps it: 80 Mbit/s, then 16 from 0.6 GB until it ended."""
    events = [{"kind": "throttle", "start": "2027-01-15T08:01:00+00:00", "end": None, "at_bytes": 600_000_000,
               "at_gb": 0.6, "baseline_mbps": 80.0, "throttled_mbps": 16.0}]
    snap = {"session_id": "0a1b2c3d4e5f", "status": "stopped", "reason": "stopped by user",
            "session_start": "2027-01-15T08:00:00+00:00", "session_duration": 150.0, "total_bytes": 900_000_000,
            "total_gb": 0.9, "streams": 4, "urls": ["http://isp.test/f"], "baseline_speed": 80.0, "avg_speed": 48.0,
            "peak_speed": 81.0, "threshold_percent": 50, "events": events, "history": [], "data_points": []}
    return history.record(snap, "2027-01-15T08:02:30+00:00")


def test_the_last_tests_verdict_is_an_entity_that_keeps_its_value_after_the_test(broker, sub, server, fake_isp):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings(), test_urls=[fake_isp(rate_mbps=40).url()], streams=1)
    configs = wait_for(lambda: configs_seen(watch), 10, "every discovery config")
    assert configs["last_test"]["json_attributes_topic"] == f"{BASE}/state"
    assert configs["last_test_throttled"]["device_class"] == "problem"
    state = wait_for(watch.state, 10, "the first state")
    assert state["last_test"] == {"verdict": None} and state["last_test_throttled"] is None  # no test yet: unknown
    kept = kept_throttled_test()
    history.append(s.data_dir, kept)  # as the downloader does when its test ends
    state = wait_for(lambda: (watch.state() or {}).get("last_test_throttled") == "ON" and watch.state(), 15,
                     "the kept test's verdict")
    assert state["throttled"] == "OFF" and state["test_status"] == "idle"  # no test runs: "Throttled" is off ...
    assert state["last_test"]["verdict"] == kept["verdict"]  # ... the last test's verdict stays
    assert (state["last_test"]["at_gb"], state["last_test"]["from_mbps"], state["last_test"]["to_mbps"]) == (0.6, 80, 16)
    metrics = s.get("/metrics").text
    assert "datacap_last_test_throttled 1.0" in metrics and "datacap_last_test_throttle_at_bytes 6e+08" in metrics
    s.post("/api/start")  # a real test: while it runs and after it ends, the entity is a finished test's
    wait_for(lambda: s.stats()["status"] == "running", 10, "the test to start")
    time.sleep(6)
    assert watch.state()["last_test"]["id"] == kept["id"]
    s.post("/api/stop")
    state = wait_for(lambda: (watch.state() or {}).get("last_test_throttled") == "OFF" and watch.state(), 20,
                     "the new test's verdict once it ended")
    assert state["last_test"]["verdict"].startswith("No throttling in ") and state["last_test"]["id"] != kept["id"]
    assert "datacap_last_test_throttled 0.0" in s.get("/metrics").text


def test_the_device_is_named_for_the_site_and_renamed_when_the_site_changes(broker, sub, server):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings(), site="Hütte 2")
    configs = wait_for(lambda: configs_seen(watch), 10, "every discovery config")
    assert {c["device"]["name"] for c in configs.values()} == {"datacap Hütte 2"}
    assert requests.put(s.url + "/api/config", json={"site": "RV 7"}, timeout=5).ok
    renamed = wait_for(lambda: (c := configs_seen(watch)) and {x["device"]["name"] for x in c.values()} == {
        "datacap RV 7"} and c, 10, "the configs published again with the new name")
    assert {c["device"]["identifiers"][0] for c in renamed.values()} == {f"datacap_{NODE}"}  # same device, same entities
