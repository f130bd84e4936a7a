"""Settings: read them, and validate-then-write config.json."""
import json
import logging
from pathlib import Path

from flask import Blueprint, jsonify
from werkzeug.exceptions import Conflict

from datacap import config as configmod
from datacap import store
from datacap.web import secrets
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

log = logging.getLogger("server")
bp = Blueprint("config", __name__)


@bp.get("/api/config")
def get_config():
    return jsonify(secrets.masked(views().cfg))


def on_disk(path):
    """The keys config.json holds now ({} when there is none); Conflict when it cannot be merged into."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise Conflict(f"cannot read {path}: {exc.strerror}; nothing was changed") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise Conflict(f"{path} does not parse ({exc}); fix or remove it by hand, nothing was changed") from None
    if not isinstance(raw, dict):
        raise Conflict(f"{path} is not a JSON object; fix or remove it by hand, nothing was changed")
    return raw


def indent_of(path):
    """config.json's indentation, so a save keeps the file as people wrote it (None: it was one line)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 2
    for line in lines[1:]:
        if line.strip():
            return (len(line) - len(line.lstrip(" "))) or None
    return 2 if not lines else None


@bp.put("/api/config")
def put_config():
    body = json_body(required=True)
    if not body:
        raise BadRequest("request body is an empty object: send the settings to change")
    v = views()
    return jsonify(apply(v, secrets.restored(body, v.cfg)))


def apply(v, body):
    """Validate {current settings, body}, then write body's keys into config.json and reload everyone; BadRequest
    with the field errors and nothing written when the result is not a valid config."""
    try:
        fresh = configmod.validate({**v.cfg, **body})
    except configmod.ConfigError as exc:
        raise BadRequest("invalid config; nothing was changed", exc.errors) from None
    with v.state_lock:
        merged = {**on_disk(v.config_path), **body}
        store.write_json_atomic(v.config_path, merged, private=secrets.private(merged),
                                indent=indent_of(v.config_path))  # its formatting and key order kept
    restart = [k for k in ("host", "port") if fresh[k] != v.cfg[k]]
    v.cfg = fresh
    if v.supervisor is not None:
        v.supervisor.reload()
    log.info("config updated through the API: %s", ", ".join(sorted(body)))
    return {"status": "applied", "restart_required": restart}
