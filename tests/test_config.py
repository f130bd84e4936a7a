import json
import subprocess
import sys

import pytest

from datacap import config
from conftest import ROOT


def test_committed_config_json_is_valid_and_complete():
    cfg = config.load(ROOT / "config.json")
    assert set(json.loads((ROOT / "config.json").read_text())) == set(config.DEFAULTS)
    assert cfg["port"] == 8000 and cfg["host"] == "127.0.0.1"


def test_partial_config_fills_defaults():
    cfg = config.validate({"data_cap_gb": 250})
    assert cfg["data_cap_gb"] == 250 and cfg["billing_day"] == 1 and cfg["streams"] == 4


@pytest.mark.parametrize("key, value, words", [
    ("test_urls", [], "non-empty list"),
    ("test_urls", ["ftp://x/y"], "ftp://x/y"),
    ("data_cap_gb", 0, "from 0.001 to 1000000"),
    ("data_cap_gb", True, "from 0.001 to 1000000"),
    ("billing_day", 32, "from 1 to 31"),
    ("billing_day", 1.5, "whole number"),
    ("interfaces", "eth0", '"auto" or'),
    ("update_interval_seconds", -1, "from 0.1"),
    ("throttle_threshold_percent", 100, "from 1 to 99"),
    ("streams", 65, "from 1 to 64"),
    ("session_limit_gb", -5, "from 0.001 to 1000000"),
    ("stop_at_cap", "yes", "true or false"),
    ("alert_thresholds_percent", [50, 101], "1 to 100"),
    ("port", 70000, "1 to 65535"),
    ("count", "upload", '"both" or "download"'),
    ("webhook_url", "not a url", "http/https URL"),
])
def test_each_bad_key_is_named_with_what_is_wrong(key, value, words):
    with pytest.raises(config.ConfigError) as err:
        config.validate({key: value})
    assert list(err.value.errors) == [key]
    assert words in err.value.errors[key]


def test_short_auth_token_is_refused_without_echoing_it():
    with pytest.raises(config.ConfigError) as err:
        config.validate({"auth_token": "hunter2"})
    assert "hunter2" not in str(err.value) and "16 characters" in str(err.value)


def test_unknown_key_is_an_error_with_a_suggestion():
    with pytest.raises(config.ConfigError) as err:
        config.validate({"data_cap_gbs": 100})
    assert "did you mean 'data_cap_gb'" in err.value.errors["data_cap_gbs"]


def test_nan_and_infinity_are_not_numbers():
    with pytest.raises(config.ConfigError) as err:
        config.parse('{"data_cap_gb": NaN}')
    assert "not valid JSON" in str(err.value)
    with pytest.raises(config.ConfigError):
        config.parse('{"data_cap_gb": Infinity}')


def test_truncated_file_is_a_clear_error(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"data_cap_gb": 10')
    with pytest.raises(config.ConfigError) as err:
        config.load(p)
    assert "not valid JSON" in str(err.value)


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError) as err:
        config.load(tmp_path / "nope.json")
    assert "file not found" in str(err.value)


@pytest.mark.parametrize("script", ["server.py", "downloader.py", "collector.py"])
def test_bad_config_exits_2_with_one_line_per_key_and_no_traceback(tmp_path, script):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"billing_day": 0, "streemz": 4}))
    r = subprocess.run([sys.executable, str(ROOT / script), "--config", str(p), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if "config error" in line]
    assert len(lines) == 2
    assert any("billing_day" in line and "from 1 to 31" in line for line in lines)
    assert any("streemz" in line and "did you mean 'streams'" in line for line in lines)
    assert not (tmp_path / "d" / "downloader.json").exists()


def test_non_loopback_host_needs_a_token_in_the_config_itself():
    with pytest.raises(config.ConfigError) as err:
        config.validate({"host": "0.0.0.0"})
    assert "auth_token" in err.value.errors["host"]
    assert config.validate({"host": "0.0.0.0", "auth_token": "a-long-enough-token"})["host"] == "0.0.0.0"
