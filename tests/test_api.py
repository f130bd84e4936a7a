"""The HTTP API through Flask's test client (no real children: see test_e2e.py for those)."""
import csv
import io
import json

import pytest

from datacap import store as jsonstore
from datacap.web import create_app
from datacap.supervise.supervisor import Supervisor
from test_supervisor import World

LOCAL = {"Host": "127.0.0.1:8000"}


@pytest.fixture
def env(tmp_path):
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps({"data_cap_gb": 100}))
    data = tmp_path / "data"
    data.mkdir()
    world = World()
    sup = Supervisor(cfg_path, data, clock=world.clock, popen=world.popen)
    app = create_app({"data_cap_gb": 100}, data, cfg_path, sup)
    client = app.test_client()
    client.environ_base.update({"HTTP_HOST": "127.0.0.1:8000"})
    return client, data, cfg_path, world


def test_stats_when_idle_has_every_spec_key(env):
    client, *_ = env
    s = client.get("/api/stats").get_json()
    for key in ("status", "speed_mbps", "total_gb", "session_duration", "avg_speed", "peak_speed",
                "throttle_detected", "throttle_events", "baseline_speed", "cap_percentage", "data_points", "last_update"):
        assert key in s
    assert s["status"] == "idle" and s["total_gb"] == 0


def test_pause_when_idle_is_409_with_a_reason(env):
    client, *_ = env
    r = client.post("/api/pause")
    assert r.status_code == 409 and "nothing to pause" in r.get_json()["error"]


def test_start_then_reset_while_running_is_409(env):
    client, *_ = env
    assert client.post("/api/start").get_json() == {"status": "connecting"}  # until the first bytes
    assert client.post("/api/reset").status_code == 409
    assert client.post("/api/start").status_code == 409


def test_start_body_is_validated_and_nothing_starts_on_bad_input(env):
    client, _, _, world = env
    r = client.post("/api/start", json={"streams": 500, "limit_gb": -1})
    assert r.status_code == 400 and set(r.get_json()["fields"]) == {"streams", "limit_gb"}
    assert client.post("/api/start", json={"strems": 2}).status_code == 400
    assert world.procs == []
    assert client.post("/api/start", json={"streams": 2, "limit_gb": 5}).status_code == 200


def test_reset_removes_the_finished_session(env):
    client, data, *_ = env
    jsonstore.write_json_atomic(data / "downloader.json", {"status": "finished", "total_gb": 5})
    assert client.get("/api/stats").get_json()["status"] == "finished"
    r = client.post("/api/reset").get_json()
    assert r["status"] == "idle" and "stays in History" in r["message"]
    assert client.get("/api/stats").get_json()["status"] == "idle"


def test_truncated_data_file_reads_as_no_data(env):
    client, data, *_ = env
    (data / "downloader.json").write_text('{"status": "runn')
    (data / "usage.json").write_text("{")
    assert client.get("/api/stats").get_json()["status"] == "idle"
    assert client.get("/api/usage").status_code == 200


def test_bad_config_put_is_400_with_fields_and_writes_nothing(env):
    client, _, cfg_path, world = env
    before = cfg_path.read_bytes()
    r = client.put("/api/config", json={"billing_day": 40, "data_cap_gb": -1, "bogus": 1})
    assert r.status_code == 400
    assert set(r.get_json()["fields"]) == {"billing_day", "data_cap_gb", "bogus"}
    assert cfg_path.read_bytes() == before
    assert client.put("/api/config", data="not json").status_code == 400
    assert cfg_path.read_bytes() == before


def test_good_config_put_is_written_and_applied_live(env):
    client, _, cfg_path, world = env
    client.post("/api/start")
    r = client.put("/api/config", json={"data_cap_gb": 250, "billing_day": 15})
    assert r.status_code == 200
    assert json.loads(cfg_path.read_text())["data_cap_gb"] == 250
    assert client.get("/api/config").get_json()["billing_day"] == 15
    assert client.get("/api/usage").get_json()["cap_bytes"] == 250 * 10**9
    assert world.procs[-1].signals[-1] == 1  # SIGHUP to the running downloader


def test_config_get_never_shows_the_token(tmp_path):
    app = create_app({"auth_token": "s3cret-token-0123456789"}, tmp_path, tmp_path / "c.json")
    r = app.test_client().get("/api/config", headers={**LOCAL, "Authorization": "Bearer s3cret-token-0123456789"})
    assert "s3cret" not in r.get_data(as_text=True) and r.get_json()["auth_token_set"] is True


def test_body_over_64_kb_is_413(env):
    client, *_ = env
    r = client.put("/api/config", data=b"x" * 70_000, content_type="application/json")
    assert r.status_code == 413 and "error" in r.get_json()


def test_unknown_path_is_json_404_and_wrong_method_json_405(env):
    client, *_ = env
    r = client.get("/api/nope")
    assert r.status_code == 404 and "error" in r.get_json()
    r = client.get("/api/start")
    assert r.status_code == 405 and "error" in r.get_json()


def test_usage_adjust_records_undoable_offset(env):
    client, data, *_ = env
    assert client.post("/api/usage/adjust", json={"used_gb": "lots"}).status_code == 400
    r = client.post("/api/usage/adjust", json={"used_gb": 12.5, "note": "ISP app"})
    assert r.status_code == 201
    item = r.get_json()
    u = client.get("/api/usage").get_json()
    assert u["cycle"]["used_bytes"] == 12_500_000_000 and u["adjustments"][0]["id"] == item["id"]
    assert client.delete(f"/api/usage/adjust/{item['id']}").status_code == 200
    assert client.get("/api/usage").get_json()["cycle"]["used_bytes"] == 0
    assert client.delete("/api/usage/adjust/nope").status_code == 404


def test_csv_export_round_trips_with_a_header(env):
    client, data, *_ = env
    points = [{"t": i, "time": f"2026-11-23T10:00:{i:02d}+00:00", "mbps": 80.0 + i, "bytes": i * 10**7} for i in range(5)]
    jsonstore.write_json_atomic(data / "downloader.json", {"status": "stopped", "data_points": points, "history": points[:1],
                                                          "throttle_events": []})
    r = client.get("/api/export?format=csv&what=samples")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [float(x["speed_mbps"]) for x in rows] == [80.0, 81.0, 82.0, 83.0, 84.0]
    assert rows[0].keys() == {"elapsed_s", "time", "speed_mbps", "session_bytes"}
    assert client.get("/api/export?format=xml").status_code == 400


def test_healthz_is_503_without_a_collector(env):
    client, *_ = env
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["reasons"]


def test_dashboard_is_served_at_root(env):
    client, *_ = env
    r = client.get("/")
    assert r.status_code == 200 and b'data-testid="status"' in r.data
    assert client.get("/static/uPlot.iife.min.js").status_code == 200


def test_empty_csv_export_still_has_its_header(env):
    client, *_ = env
    for what, first in (("samples", "elapsed_s"), ("daily", "date"), ("events", "test_id"), ("history", "id")):
        text = client.get(f"/api/export?format=csv&what={what}").get_data(as_text=True)
        assert text.splitlines()[0].split(",")[0] == first


def test_config_that_cannot_be_saved_is_a_clear_json_error(env, monkeypatch):
    client, _, cfg_path, _ = env
    before = cfg_path.read_bytes()

    def refuse(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(jsonstore, "write_json_atomic", refuse)
    r = client.put("/api/config", json={"data_cap_gb": 5})
    assert r.status_code == 503 and "No space left" in r.get_json()["error"]
    assert cfg_path.read_bytes() == before
    assert client.get("/api/config").get_json()["data_cap_gb"] == 100  # not applied either
