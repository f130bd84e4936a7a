"""Settings: read them, and validate-then-write config.json."""
import logging

from flask import Blueprint, jsonify

from datacap import config as configmod
from datacap import store
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

log = logging.getLogger("server")
bp = Blueprint("config", __name__)


@bp.get("/api/config")
def get_config():
    cfg = views().cfg
    shown = {k: v for k, v in cfg.items() if k != "auth_token"}
    return jsonify({**shown, "auth_token_set": bool(cfg.get("auth_token"))})


@bp.put("/api/config")
def put_config():
    body = json_body()
    v = views()
    try:
        fresh = configmod.validate({**v.cfg, **body})
    except configmod.ConfigError as exc:
        raise BadRequest("invalid config; nothing was changed", exc.errors) from None
    with v.state_lock:
        on_disk = store.read_json(v.config_path) or {}
        store.write_json_atomic(v.config_path, {**on_disk, **body})
    restart = [k for k in ("host", "port") if fresh[k] != v.cfg[k]]
    v.cfg = fresh
    if v.supervisor is not None:
        v.supervisor.reload()
    log.info("config updated through the API: %s", ", ".join(sorted(body)) or "(no change)")
    return jsonify(status="applied", restart_required=restart)
