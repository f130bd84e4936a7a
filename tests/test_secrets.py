"""Secrets in config.json are never shown by the API, and a save that sends them back masked keeps them."""
import json
import stat

from datacap.web import create_app
from datacap.web.secrets import MASK

SECRET_CFG = {"mqtt": {"host": "127.0.0.1", "username": "ha", "password": "broker-pass-123"},
              "notify_urls": ["tgram://123456:ABCdef-secret/987", "json://127.0.0.1:9/hook"],
              "sources": [{"type": "snmp", "host": "192.168.1.1", "community": "s3cret-community", "interface": "wan"},
                          {"type": "local", "counts": False}]}


def test_get_config_shows_no_secret_and_a_masked_save_keeps_them(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SECRET_CFG, indent=2))
    app = create_app(SECRET_CFG, tmp_path, path)
    client = app.test_client()
    shown = client.get("/api/config").get_json()
    text = json.dumps(shown)
    for secret in ("broker-pass-123", "ABCdef-secret", "s3cret-community"):
        assert secret not in text
    assert shown["mqtt"]["password"] == MASK and shown["notify_urls"][0] == f"tgram://{MASK}"
    shown_back = {k: shown[k] for k in ("mqtt", "notify_urls", "sources")}
    shown_back["mqtt"]["port"] = 1884  # the form changes one thing and sends the rest as it got it
    assert client.put("/api/config", json=shown_back).status_code == 200
    saved = json.loads(path.read_text())
    assert saved["mqtt"]["password"] == "broker-pass-123" and saved["mqtt"]["port"] == 1884
    assert saved["notify_urls"] == SECRET_CFG["notify_urls"]
    assert saved["sources"][0]["community"] == "s3cret-community"
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # secrets: 0600 or tighter
