"""`site`: validated like every key, the host name by default, and shown wherever several datacaps meet."""
import socket

import pytest

from datacap import config
from datacap.fleet.settings import site_name
from datacap.notify import discovery, events
from datacap.web import create_app
from test_browser import chromium, page  # noqa: F401  (the real-browser fixtures)
from test_probe_api import write_probes
from test_report_browser import throttled_test


@pytest.mark.parametrize("bad", ["", " cabin", "cabin ", "cab\nin", 'a"b', "x" * 64, 7, ["cabin"], "{site}"])
def test_a_bad_site_name_is_one_error_naming_the_key(bad):
    with pytest.raises(config.ConfigError) as e:
        config.validate({"site": bad})
    assert list(e.value.errors) == ["site"] and "name of 1 to 63 letters" in e.value.errors["site"]


@pytest.mark.parametrize("good", ["cabin", "Hütte 2", "RV-7.b", "farm_lte", "a"])
def test_place_names_are_good_site_names(good):
    assert site_name(config.validate({"site": good})) == good


def test_no_site_means_the_host_name():
    assert config.validate({})["site"] is None and site_name(config.validate({})) == socket.gethostname()


def test_a_misspelt_key_is_an_error_with_a_suggestion():
    with pytest.raises(config.ConfigError) as e:
        config.validate({"stie": "cabin"})
    assert e.value.errors == {"stie": "unknown key (did you mean 'site'?)"}


@pytest.mark.parametrize("bad", ["127.0.0.1:9090", "ftp://127.0.0.1:9090", "http://127.0.0.1:9090/metrics",
                                 "http://127.0.0.1:9090/?x=1", 9090])
def test_the_agent_url_is_a_base_url(bad):
    with pytest.raises(config.ConfigError) as e:
        config.validate({"fleet_agent_url": bad})
    assert list(e.value.errors) == ["fleet_agent_url"]
    assert config.validate({"fleet_agent_url": "http://127.0.0.1:9090/"})["fleet_agent_url"]


def test_the_system_api_names_the_site_and_the_settings_api_changes_it(tmp_path):
    app = create_app({"site": "cabin"}, data_dir=tmp_path, config_path=tmp_path / "config.json")
    c = app.test_client()
    assert c.get("/api/system").get_json()["site"] == "cabin"
    assert c.put("/api/config", json={"site": "RV 7"}).status_code == 200
    assert c.get("/api/system").get_json()["site"] == "RV 7"
    r = c.put("/api/config", json={"site": " RV 7"})
    assert r.status_code == 400 and "site" in r.get_json()["fields"]


def test_notifications_are_worded_with_the_site(tmp_path):
    app = create_app({"data_cap_gb": 10, "site": "Hütte 2"}, data_dir=tmp_path)
    v = app.extensions["datacap"]
    write_probes(tmp_path, v.cfg, [90, 91, 90, 3, 3])  # a step down the probes found: news
    found = [n for n in events.news(v) if n.key.startswith("probe-")]
    assert found and all(n.text.startswith("datacap at Hütte 2: ") for n in found)


def test_the_home_assistant_device_is_named_for_the_site_and_keeps_the_hosts_id():
    d = discovery.device("pi", "cabin")
    assert d["name"] == "datacap cabin" and d["identifiers"] == ["datacap_pi"]


def test_the_dashboard_and_the_report_show_the_site(server, page):  # noqa: F811
    from datacap.measure import history
    s = server(site="Hütte 2")
    page.goto(s.url + "/")
    page.wait_for_function("document.title === 'datacap — Hütte 2'", timeout=5000)
    assert page.get_by_test_id("site").inner_text() == "Hütte 2"
    t = throttled_test()
    history.append(s.data_dir, t)
    page.goto(f"{s.url}/report/{t['id']}")
    page.wait_for_selector("#report[aria-busy=false]", timeout=5000)
    assert page.title().startswith("datacap evidence — Hütte 2, ")
    assert "Site Hütte 2" in " ".join(page.locator("#summary").inner_text().split())
    assert page.console_errors == [], page.console_errors
