"""The devices key, /api/devices and its actions, the CSV, /metrics and Home Assistant per device (issue 26): the real
app over the files a collector with a fake kernel wrote (tests/device_fakes.py)."""
import csv
import io
import json
import shutil
import subprocess

import pytest

from conftest import need
from datacap import config
from datacap.devices import requests as device_requests
from datacap.notify import discovery, mqtt
from datacap.web import create_app
from datacap.web.secrets import MASK
from harness import wait_for
from test_devices_counting import A, B, MB, Gateway
from test_mqtt import broker, sub  # noqa: F401  (fixtures: Debian's mosquitto and mosquitto_sub)

TOKEN = "device-api-token-4f7a1c9e"


@pytest.mark.parametrize("value, words", [
    ({"lan": []}, "devices: lan: must be a non-empty list"),
    ({"lan": ["br-lan"], "budgets": {"02:dc:00:00:00:0a": {"gb": 0}}}, "devices: budgets: 02:dc:00:00:00:0a: gb must be"),
    ({"lan": ["br-lan"], "budgets": {"nope": {"gb": 1}}}, "devices: budgets: 'nope' is not a MAC address"),
    ({"lan": ["br-lan"], "budgets": {A: {"gb": 1, "per": "week"}}}, 'per must be "cycle" or "day"'),
    ({"lan": ["br-lan"], "budget": {}}, "devices: unknown key 'budget' (did you mean 'budgets'?)"),
    ({"lan": ["br-lan"], "names": {A: ""}}, "devices: names: 02:dc:00:00:00:0a: must be a name"),
    ({"lan": ["br lan"]}, "devices: lan: must be"),
    ({"lan": ["br-lan"], "unifi": {"url": "ftp://x", "api_key": "k"}}, "devices: unifi: url must be"),
    ({"lan": ["br-lan"], "leases": ["relative.leases"]}, "devices: leases: must be a list of absolute paths"),
    ({"names": {A: "x"}}, "devices: lan: name the gateway's LAN interfaces"),
    ("br-lan", "devices: must be null or an object"),
])
def test_a_bad_devices_setting_is_one_message_naming_the_key(value, words):
    with pytest.raises(config.ConfigError) as exc:
        config.validate({"devices": value})
    assert words in str(exc.value) and list(exc.value.errors) == ["devices"]


def test_macs_are_kept_one_way_whatever_way_they_are_written():
    from datacap.devices import settings
    s = settings.of(config.validate({"devices": {"lan": ["br-lan"], "names": {"02-DC-00-00-00-0A": "Laptop"},
                                                 "budgets": {"02:DC:00:00:00:0B": {"gb": 1.5, "per": "day"}}}}))
    assert s.names == {A: "Laptop"} and s.budgets == {B: (1_500_000_000, "day")}


@pytest.fixture
def gateway(tmp_path):
    """A data folder a collector counting two devices (one paused) wrote, and an app reading it."""
    g = Gateway(tmp_path)
    c = g.collector(budgets={B: {"gb": 0.005, "per": "day"}})
    c.start()
    g.traffic("down4 10.0.0.10 wan", 30 * MB)
    g.traffic("down4 10.0.0.11 wan", 6 * MB)
    g.traffic("own_out wan", 1 * MB)
    g.tick(c)
    c.devices.flush(g.wall, force=True)
    return g, c


def app_for(g, c, **extra):
    cfg = {k: v for k, v in c.cfg.items() if k in ("interfaces", "sources", "data_cap_gb", "devices")}
    return create_app({**cfg, **extra}, data_dir=g.folder, config_path=g.folder / "config.json")


def test_api_devices_lists_each_device_and_each_lines_unattributed_bytes(gateway):
    g, c = gateway
    doc = app_for(g, c).test_client().get("/api/devices").get_json()
    laptop, tv = doc["devices"]
    assert {k: laptop[k] for k in ("mac", "name", "addresses", "line", "today_bytes", "cycle_bytes", "budget_bytes",
                                   "paused")} == {"mac": A, "name": "laptop", "addresses": ["10.0.0.10", "fd00::a"],
                                                  "line": "Internet", "today_bytes": 30 * MB, "cycle_bytes": 30 * MB,
                                                  "budget_bytes": None, "paused": False}
    assert (tv["name"], tv["paused"], tv["pause_reason"], tv["budget_bytes"]) == ("tv", True, "budget", 5 * MB)
    assert doc["unattributed_bytes"] == {"Internet": MB} and doc["lines"][0]["gateway_bytes"] == MB
    assert doc["enabled"] is True


def test_a_pause_is_a_request_the_collector_applies_and_an_unknown_device_is_404(gateway):
    g, c = gateway
    client = app_for(g, c).test_client()
    r = client.post(f"/api/devices/{A.upper()}/pause", json={"until": "tomorrow"})
    assert r.status_code == 202 and r.get_json()["request"]["mac"] == A
    assert client.post("/api/devices/02:dc:00:00:00:99/pause").status_code == 404
    assert client.post("/api/devices/not-a-mac/pause").status_code == 404
    assert client.post(f"/api/devices/{A}/pause", json={"until": "next week"}).status_code == 400
    assert client.post(f"/api/devices/{A}/unpause", json={"until": "tomorrow"}).status_code == 400
    c.devices.poll(g.wall)
    assert g.kernel.paused[0] == sorted([A, B])
    doc = client.get("/api/devices").get_json()
    assert doc["devices"][0]["paused_until"] == "2026-11-11T00:00:00+01:00"
    assert len(device_requests.items(json.loads((g.folder / device_requests.NAME).read_text()))) == 1


def test_pause_and_budgets_follow_the_same_rules_as_start(gateway):
    g, c = gateway
    client = app_for(g, c, host="0.0.0.0", auth_token=TOKEN).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(f"/api/devices/{B}/unpause").status_code == 401  # a device on the LAN, without the token
    assert client.post(f"/api/devices/{B}/unpause", headers={**auth, "Origin": "http://evil.example"}).status_code == 403
    assert client.post(f"/api/devices/{B}/unpause", headers={**auth, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post(f"/api/devices/{B}/unpause", headers={**auth, "Host": "evil.example"}).status_code == 403
    assert client.put(f"/api/devices/{B}/budget", json={"gb": 100}).status_code == 401
    assert not (g.folder / device_requests.NAME).exists()
    assert client.post(f"/api/devices/{B}/unpause", headers=auth).status_code == 202


def test_a_budget_is_saved_in_config_json_and_a_bad_one_writes_nothing(gateway):
    g, c = gateway
    app = app_for(g, c)
    client = app.test_client()
    (g.folder / "config.json").write_text(json.dumps({"devices": c.cfg["devices"]}))
    before = (g.folder / "config.json").read_text()
    r = client.put(f"/api/devices/{A}/budget", json={"gb": -1})
    assert r.status_code == 400 and "devices" in r.get_json()["fields"]
    assert client.put("/api/config", json={"devices": {"lan": ["lan"], "budgetz": {}}}).status_code == 400
    assert (g.folder / "config.json").read_text() == before
    assert client.put(f"/api/devices/{A}/budget", json={"gb": 2, "per": "day"}).status_code == 200
    assert json.loads((g.folder / "config.json").read_text())["devices"]["budgets"][A] == {"gb": 2, "per": "day"}
    assert client.delete(f"/api/devices/{B}/budget").status_code == 200
    assert B not in json.loads((g.folder / "config.json").read_text())["devices"]["budgets"]
    assert client.put(f"/api/devices/{A}/name", json={"name": "Kids' laptop"}).status_code == 200
    assert app.extensions["datacap"].cfg["devices"]["names"] == {A: "Kids' laptop"}


def test_with_device_counting_off_the_actions_say_so(tmp_path):
    client = create_app({}, data_dir=tmp_path).test_client()
    assert client.get("/api/devices").get_json()["enabled"] is False
    r = client.post(f"/api/devices/{A}/pause")
    assert r.status_code == 409 and "device counting is off" in r.get_json()["error"]


def test_the_unifi_password_is_never_shown_and_a_masked_save_keeps_it(tmp_path):
    unifi = {"url": "https://192.168.1.1", "username": "datacap", "password": "very-secret-pw"}
    (tmp_path / "config.json").write_text(json.dumps({"devices": {"unifi": unifi}}))
    app = create_app(None, data_dir=tmp_path, config_path=tmp_path / "config.json")
    client = app.test_client()
    shown = client.get("/api/config").get_json()["devices"]
    assert shown["unifi"]["password"] == MASK
    assert client.put("/api/config", json={"devices": {**shown, "names": {A: "x"}}}).status_code == 200
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["devices"]["unifi"]["password"] == "very-secret-pw"
    assert (tmp_path / "config.json").stat().st_mode & 0o077 == 0


def test_csv_of_the_devices_days(gateway):
    g, c = gateway
    r = app_for(g, c).test_client().get("/api/export?what=devices&format=csv")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    got = {(x["mac"], x["name"], x["line"]): int(x["bytes"]) for x in rows}
    assert got == {(A, "laptop", "Internet"): 30 * MB, (B, "tv", "Internet"): 6 * MB,
                   ("gateway", "this gateway", "Internet"): MB}


def test_metrics_label_only_the_top_20_devices(tmp_path):
    g = Gateway(tmp_path)
    g.leases.write_text("".join(f"1800000000 02:dc:00:00:01:{i:02x} 10.0.1.{i} dev{i} *\n" for i in range(30)))
    c = g.collector()
    c.start()
    for i in range(30):
        g.traffic(f"down4 10.0.1.{i} wan", (i + 1) * MB)
    g.tick(c)
    text = app_for(g, c).test_client().get("/metrics").get_data(as_text=True)
    series = [x for x in text.splitlines() if x.startswith("datacap_device_cycle_bytes{")]
    need(shutil.which("promtool"), "promtool is not installed (apt-get install prometheus)")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    value = {x.rsplit(" ", 1)[0]: float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x and not x.startswith("#")}
    assert len(series) == 20 and 'name="dev29"' in series[0] and not any('name="dev9"' in x for x in series)
    assert value["datacap_devices_other_cycle_bytes"] == sum(range(1, 11)) * MB  # dev0 .. dev9
    assert value['datacap_line_unattributed_cycle_bytes{line="Internet"}'] == 0


def test_home_assistant_gets_a_sensor_per_device_only_when_asked():
    class Topics:
        node, availability = "pi", "datacap/pi/availability"
        state = "datacap/pi/state"

        def config(self, component, object_id):
            return f"homeassistant/{component}/pi/{object_id}/config"
    doc = {"devices": [{"mac": A, "name": "laptop", "cycle_bytes": 3 * 10 ** 9, "today_bytes": 10 ** 9, "paused": False,
                        "budget_bytes": None},
                       {"mac": B, "name": "tv", "cycle_bytes": 10 ** 8, "today_bytes": 0, "paused": True,
                        "budget_bytes": 10 ** 8}]}
    wanted = discovery.devices_wanted(doc, {})
    configs = dict(discovery.device_configs(Topics(), "pi", wanted))
    cycle = configs["homeassistant/sensor/pi/device_02dc0000000a_cycle/config"]
    assert cycle["name"] == "laptop this cycle" and cycle["unit_of_measurement"] == "GB"
    assert discovery.device_state(doc, wanted)["device_02dc0000000b_paused"] == "ON"
    gone = dict(discovery.device_configs(Topics(), "pi", {}, [A]))
    assert set(gone.values()) == {None}  # removed when device counting is off


def test_each_device_appears_in_home_assistant_through_a_real_broker(gateway, broker, sub):
    g, c = gateway
    b = broker()
    watch = sub(b)
    devices = {**c.cfg["devices"], "home_assistant": True}
    views = app_for(g, c, mqtt=b.settings(), devices=devices).extensions["datacap"]
    bridge = mqtt.MqttBridge(views)
    laptop = f"homeassistant/sensor/{discovery.node_id()}/{discovery.device_id(A)}_cycle/config"
    tv_paused = f"homeassistant/binary_sensor/{discovery.node_id()}/{discovery.device_id(B)}_paused/config"
    try:
        def published():
            bridge.tick()
            state = watch.state()
            return watch.last(laptop) and watch.last(tv_paused) and state and f"{discovery.device_id(A)}_cycle" in state
        wait_for(published, 15, "the devices' entities and their state")
        assert json.loads(watch.last(laptop))["name"] == "laptop this cycle"
        state = watch.state()
        assert state[f"{discovery.device_id(A)}_cycle"] == 0.03 and state[f"{discovery.device_id(B)}_paused"] == "ON"
    finally:
        bridge.disconnect()
