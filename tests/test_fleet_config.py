"""deploy/fleet: the configs pass promtool, the alert rules pass their unit tests, the agent config is made
from datacap's own config, and the dashboard, the rules and the agent's filter agree on the series."""
import json
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, need
from datacap import config
from datacap.fleet import agent_config
from fleet_dashboard import DEVICE_SERIES, dashboard_queries
from fleet_lab import FLEET


def promtool(*args):
    need(shutil.which("promtool"), "promtool is not installed (apt-get install prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def test_the_shipped_configs_pass_promtool():
    for args in (["check", "config", str(FLEET / "agent.yml")], ["check", "config", str(FLEET / "central.yml")],
                 ["check", "rules", str(FLEET / "rules.yml")]):
        r = promtool(*args)
        assert r.returncode == 0 and "SUCCESS" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_central_web_config_passes_promtool_with_a_real_certificate(tmp_path):
    from fleet_lab import PASSWORD_HASH, tls
    tls(tmp_path, "192.0.2.1")
    web = yaml.safe_load((FLEET / "central-web.yml").read_text())
    web["tls_server_config"] = {"cert_file": str(tmp_path / "central.crt"), "key_file": str(tmp_path / "central.key")}
    web["basic_auth_users"] = {"cabin": PASSWORD_HASH}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    r = promtool("check", "web-config", str(tmp_path / "web.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_alert_rules_pass_their_unit_tests():
    r = promtool("test", "rules", str(ROOT / "tests" / "fleet_rules.test.yml"))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_the_agent_config_carries_the_site_datacaps_address_and_token(tmp_path):
    token = "k3Jd9Qm2Lx7Vb4Tz"
    cfg = config.validate({"site": "Hütte 2", "host": "0.0.0.0", "port": 8321, "auth_token": token})
    text = agent_config.render(cfg, "https://central.example.net:9090/", password_file="/p", ca_file="/ca.pem")
    (tmp_path / "agent.yml").write_text(text)
    r = promtool("check", "config", str(tmp_path / "agent.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = yaml.safe_load(text)
    assert doc["global"]["external_labels"] == {"site": "Hütte 2"}
    job = doc["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8321"] and job["authorization"]["credentials"] == token
    remote = doc["remote_write"][0]
    assert remote["url"] == "https://central.example.net:9090/api/v1/write"
    assert remote["basic_auth"] == {"username": "Hütte 2", "password_file": "/p"}
    assert remote["tls_config"] == {"ca_file": "/ca.pem"} and remote["enable_http2"] is False
    assert remote["metadata_config"] == {"send": False}
    assert doc["global"]["scrape_interval"] == "5m"  # the template's choice for a capped link


def test_the_agent_config_command_reads_config_json_and_trusts_a_public_ca_on_request(tmp_path):
    import sys
    (tmp_path / "config.json").write_text(json.dumps({"site": "cabin", "port": 8123}))
    r = subprocess.run([sys.executable, "-m", "datacap.fleet.agent_config", "--central", "https://c.example.net:9090",
                        "--config", str(tmp_path / "config.json"), "--public-ca", "--user", "cab1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert "tls_config" not in doc["remote_write"][0] and doc["remote_write"][0]["basic_auth"]["username"] == "cab1"
    (tmp_path / "config.json").write_text(json.dumps({"site": " cabin"}))
    r = subprocess.run([sys.executable, "-m", "datacap.fleet.agent_config", "--central", "http://c.example.net",
                        "--config", str(tmp_path / "config.json")], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == config.EXIT_BAD_CONFIG and "site: must be null" in r.stderr


def used_series():
    """Every datacap_ series (and up) that the dashboard's queries and the alert rules read."""
    exprs = [q for _, q in dashboard_queries()]
    exprs += [r["expr"] for g in yaml.safe_load((FLEET / "rules.yml").read_text())["groups"] for r in g["rules"]]
    return {m for e in exprs for m in re.findall(r"\b(?:datacap_\w+|up)\b", e)}


def exported_series(text):
    names = set(re.findall(r"^# TYPE (\w+)", text, re.M))
    return names | {n + "_total" for n in names}


def test_the_dashboard_and_rules_read_only_series_datacap_exports_or_will(server):
    exported = exported_series(server().get("/metrics").text) | {"up"}
    used = used_series()
    assert "datacap_cycle_used_bytes" in used and "up" in used
    assert used <= exported | DEVICE_SERIES, used - exported - DEVICE_SERIES


def test_the_agent_sends_every_series_the_dashboard_and_rules_read_and_not_the_rest(server):
    agent = yaml.safe_load((FLEET / "agent.yml").read_text())["remote_write"][0]
    keep = next(r["regex"] for r in agent["write_relabel_configs"] if r["action"] == "keep")
    kept = re.compile(keep)
    assert all(kept.fullmatch(name) for name in used_series()), [n for n in used_series() if not kept.fullmatch(n)]
    exported = exported_series(server().get("/metrics").text)
    sent = {n for n in exported | DEVICE_SERIES if kept.fullmatch(n)}
    assert sent == used_series() - {"up"}, sent ^ (used_series() - {"up"})  # each series sent costs every send


def test_every_dashboard_query_is_filtered_by_the_site_variable():
    dash = json.loads((FLEET / "grafana-dashboard.json").read_text())
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource", "site"]
    queries = dashboard_queries()
    assert len(queries) >= 10
    for title, q in queries:
        assert q.startswith("label_values(") or 'site=~"$site"' in q, (title, q)


def test_contrib_copies_are_gone():
    assert not (ROOT / "contrib" / "grafana-dashboard.json").exists()
    assert not (ROOT / "contrib" / "prometheus.yml").exists()


@pytest.mark.parametrize("name", ["agent.yml", "central.yml", "central-web.yml", "rules.yml",
                                  "grafana-dashboard.json", "prometheus-agent.default", "prometheus-central.default"])
def test_the_readme_walks_through_each_file(name):
    readme = (ROOT / "README.md").read_text()
    assert f"deploy/fleet/{name}" in readme
