"""The config keys for MQTT and notifications: same rules as the others, and secrets never echoed."""
import json
import subprocess
import sys

import pytest
import requests

from datacap import config
from datacap.notify import destinations  # noqa: F401 (as in the server: URLs checked by Apprise's parser)
from datacap.notify.settings import mqtt_settings
from harness import ROOT, write_config


def errors(raw):
    with pytest.raises(config.ConfigError) as info:
        config.validate(raw)
    return info.value.errors


def test_a_bad_apprise_url_is_named_by_position_without_its_secret():
    e = errors({"notify_urls": ["ntfys://ntfy.sh/alerts", "gotify://admin:hunter2secret@"]})
    assert set(e) == {"notify_urls"}
    assert "entry 2" in e["notify_urls"] and "gotify://" in e["notify_urls"] and "hunter2secret" not in e["notify_urls"]
    assert "list of Apprise URLs" in errors({"notify_urls": "json://x"})["notify_urls"]


def test_good_apprise_urls_and_mqtt_settings_pass_with_their_defaults():
    urls = ["json://127.0.0.1:9/hook", "ntfys://ntfy.sh/my-cap", "mailto://u:p@gmail.com"]
    cfg = config.validate({"notify_urls": urls,
                           "mqtt": {"host": "192.168.1.10", "username": "ha", "password": "pw", "tls": True}})
    m = mqtt_settings(cfg)
    assert m["port"] == 8883 and m["topic_prefix"] == "datacap" and m["discovery_prefix"] == "homeassistant"
    assert m["commands"] is False and mqtt_settings(config.validate({})) is None
    assert config.validate({})["notify_outage_minutes"] == 10


@pytest.mark.parametrize("mqtt, expected", [
    ({"host": "h", "prot": 1883}, "prot: unknown key (did you mean 'port'?)"),
    ({"host": "h", "port": 70000}, "port must be null"),
    ({"port": 1883}, "host must be a broker host name"),
    ({"host": "h", "topic_prefix": "datacap/#"}, "topic_prefix must be MQTT topic levels"),
    ({"host": "h", "discovery_prefix": "/homeassistant"}, "discovery_prefix must be MQTT topic levels"),
    ({"host": "h", "commands": "yes"}, "commands must be true or false"),
    ({"host": "h", "password": "s3cret-pass"}, "password is set without a username"),
    ("mqtt.local", "must be null or an object"),
])
def test_each_bad_mqtt_setting_is_named(mqtt, expected):
    message = errors({"mqtt": mqtt})["mqtt"]
    assert expected in message and "s3cret-pass" not in message


def test_notify_outage_minutes_must_be_a_sensible_number():
    assert "from 1 to 1440" in errors({"notify_outage_minutes": 0})["notify_outage_minutes"]
    assert "from 1 to 1440" in errors({"notify_outage_minutes": True})["notify_outage_minutes"]


def test_the_server_refuses_to_start_on_a_bad_url_and_never_prints_its_password(tmp_path):
    path = write_config(tmp_path, notify_urls=["tgram://not-a-bot-token:hunter2secret"],
                        mqtt={"host": "127.0.0.1", "username": "ha", "password": 7})
    r = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(path), "--data-dir",
                        str(tmp_path / "data"), "--no-browser"], capture_output=True, text=True, timeout=30)
    assert r.returncode == config.EXIT_BAD_CONFIG
    out = r.stdout + r.stderr
    assert "notify_urls" in out and "entry 1" in out and "mqtt" in out and "password must be null or a string" in out
    assert "hunter2secret" not in out and "not-a-bot-token" not in out


def test_a_bad_url_through_the_settings_api_is_a_400_and_nothing_is_written(server):
    s = server()
    before = s.config_path.read_text()
    r = requests.put(s.url + "/api/config", json={"notify_urls": ["discord://only-an-id-hunter2"]}, timeout=5)
    assert r.status_code == 400 and "notify_urls" in json.dumps(r.json())
    assert "hunter2" not in r.text and s.config_path.read_text() == before


CHILD = """
import sys
from datacap import config
config.validate({"notify_urls": ["gotify://host-without-token"]})  # Apprise would refuse it; the server does
try:
    config.validate({"notify_urls": ["not a url"]})
except config.ConfigError as exc:
    print(exc)
print("apprise" in sys.modules)
"""


def test_a_child_checks_only_the_shape_of_notify_urls_and_never_loads_apprise():
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["notify_urls: entry 1: is not an Apprise URL (scheme://...)", "False"]
