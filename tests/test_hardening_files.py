"""Files keep their privacy, the runtime folder is ours, and bad bodies are 400s, never 500s or rewrites."""
import hashlib
import json
import os
import shutil
import stat

import pytest
import requests

from conftest import need
from datacap import store
from datacap.web import create_app
from harness import wait_for

LOCAL = {"Host": "127.0.0.1:8000"}
TOKEN = "Zq8-w3Rt_kP0vLx9sN2m"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def client_and_config(tmp_path):
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps({"data_cap_gb": 100}))
    app = create_app({"data_cap_gb": 100}, tmp_path / "data", cfg_path)
    (tmp_path / "data").mkdir()
    client = app.test_client()
    client.environ_base.update({"HTTP_HOST": "127.0.0.1:8000"})
    return client, cfg_path


def test_saving_settings_keeps_a_0600_config_0600(client_and_config):
    client, cfg_path = client_and_config
    os.chmod(cfg_path, 0o600)
    assert client.put("/api/config", json={"data_cap_gb": 250}).status_code == 200
    assert mode(cfg_path) == 0o600 and json.loads(cfg_path.read_text())["data_cap_gb"] == 250


def test_a_config_holding_the_token_is_never_written_wider_than_0600(client_and_config):
    client, cfg_path = client_and_config
    os.chmod(cfg_path, 0o644)
    assert client.put("/api/config", json={"auth_token": TOKEN}).status_code == 200
    assert mode(cfg_path) == 0o600
    cfg_path.unlink()  # a new file with the token in it is born private too
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.put("/api/config", json={"auth_token": TOKEN + "x"}, headers=bearer).status_code == 200
    assert mode(cfg_path) == 0o600


def test_other_json_files_keep_their_mode_too(tmp_path):
    path = tmp_path / "x.json"
    store.write_json_atomic(path, {"a": 1})
    assert mode(path) == 0o644  # a new file, readable as before
    os.chmod(path, 0o640)
    store.write_json_atomic(path, {"a": 2})
    assert mode(path) == 0o640


@pytest.mark.parametrize("on_disk", ['{"data_cap_gb": 100,', "[1, 2]"], ids=["torn", "not-an-object"])
def test_save_while_config_on_disk_does_not_parse_is_409_and_file_unchanged(client_and_config, on_disk):
    client, cfg_path = client_and_config
    cfg_path.write_text(on_disk)
    r = client.put("/api/config", json={"streams": 3})
    assert r.status_code == 409
    assert str(cfg_path) in r.get_json()["error"] and "nothing was changed" in r.get_json()["error"]
    assert cfg_path.read_text() == on_disk
    assert client.get("/api/config").get_json()["streams"] == 4  # not applied either


BAD_BODIES = [
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
    (b"", "empty"),
    (b"   ", "empty"),
    (b"{}", "empty object"),
    (b"[]", "not an array"),
    (b'"streams"', "not a string"),
    (b"3", "not a number"),
    (b"null", "not null"),
    (b"{nope", "not valid JSON"),
]


@pytest.mark.parametrize("body, words", BAD_BODIES, ids=[w for _, w in BAD_BODIES])
def test_bad_config_bodies_are_400_naming_the_problem(client_and_config, body, words):
    client, cfg_path = client_and_config
    before = cfg_path.read_bytes()
    r = client.put("/api/config", data=body, content_type="application/json")
    assert r.status_code == 400 and words.replace("not ", "") in r.get_json()["error"]
    assert cfg_path.read_bytes() == before


def test_json_nested_5000_deep_is_400_from_the_real_server(server):
    s = server()
    deep = b"[" * 5000 + b"]" * 5000
    for method, path in (("PUT", "/api/config"), ("POST", "/api/start"), ("POST", "/api/usage/adjust")):
        r = requests.request(method, s.url + path, data=deep, headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"], (path, r.text[:200])
    assert "Traceback" not in s.log(), s.log()
    assert s.stats()["status"] == "idle"


def usual_runtime_folder(data_dir):
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return f"/dev/shm/datacap-{os.getuid()}-{tag}"


def need_root_and_shm():
    need(os.geteuid() == 0, "chown to another user needs root")
    need(os.path.isdir("/dev/shm") and not os.environ.get("RUNTIME_DIRECTORY"), "needs /dev/shm, no RUNTIME_DIRECTORY")


@pytest.fixture
def squatted(tmp_path):
    """The usual runtime folder, made first by another user (uid 65534) with fake figures in it."""
    data_dir = tmp_path / "s0" / "data"
    usual = usual_runtime_folder(data_dir)
    os.makedirs(usual, mode=0o777)
    fake = {"status": "running", "updated_at": "2099-01-01T00:00:00+00:00", "interval_seconds": 1,
            "interfaces": {"evil0": {"rx_bytes": 1, "tx_bytes": 1, "counted": True}}}
    with open(os.path.join(usual, "collector.json"), "w") as f:
        json.dump(fake, f)
    os.chown(os.path.join(usual, "collector.json"), 65534, 65534)
    os.chown(usual, 65534, 65534)
    yield data_dir, usual
    for p in [usual, *[f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if n.startswith(os.path.basename(usual) + "-")]]:
        shutil.rmtree(p, ignore_errors=True)


def test_a_foreign_owned_runtime_folder_is_passed_over_for_a_fresh_private_one(squatted, caplog):
    need_root_and_shm()
    data_dir, usual = squatted
    chosen = store.runtime_dir(data_dir, create=True)
    assert str(chosen) != usual and str(chosen).startswith(usual + "-")
    st = os.lstat(chosen)
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700 and stat.S_ISDIR(st.st_mode)
    assert store.runtime_dir(data_dir) == chosen  # readers (the server) find the same one
    assert "owned by uid 65534" in caplog.text


def test_a_symlinked_runtime_folder_is_passed_over(tmp_path, caplog):
    need(os.path.isdir("/dev/shm") and not os.environ.get("RUNTIME_DIRECTORY"), "needs /dev/shm")
    data_dir = tmp_path / "data"
    usual = usual_runtime_folder(data_dir)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, usual)
    try:
        chosen = store.runtime_dir(data_dir, create=True)
        assert str(chosen).startswith(usual + "-") and not os.path.islink(chosen)
        assert "is a symlink" in caplog.text
    finally:
        os.unlink(usual)
        shutil.rmtree(chosen, ignore_errors=True)


def test_our_own_runtime_folder_is_created_0700_and_tightened_if_wider(tmp_path):
    need(os.path.isdir("/dev/shm") and not os.environ.get("RUNTIME_DIRECTORY"), "needs /dev/shm")
    data_dir = tmp_path / "data"
    usual = usual_runtime_folder(data_dir)
    try:
        assert str(store.runtime_dir(data_dir, create=True)) == usual and mode(usual) == 0o700
        os.chmod(usual, 0o755)
        assert str(store.runtime_dir(data_dir)) == usual and mode(usual) == 0o700
    finally:
        shutil.rmtree(usual, ignore_errors=True)


def test_the_dashboard_never_shows_a_squatters_fake_interfaces(squatted, server):
    need_root_and_shm()
    data_dir, usual = squatted
    s = server()
    assert s.data_dir == data_dir
    wait_for(lambda: s.get("/healthz").status_code == 200, 10, "the collector writing its real file")
    names = {row["name"] for row in s.get("/api/interfaces").json()["interfaces"]}
    assert "evil0" not in names
    assert "owned by uid 65534" in s.log()
    assert os.stat(os.path.join(usual, "collector.json")).st_uid == 65534  # we never wrote into theirs
