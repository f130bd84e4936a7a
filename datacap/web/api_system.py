"""The machine: interfaces, processes, external IP, and the health check."""
from flask import Blueprint, current_app, jsonify

from datacap import VERSION
from datacap.web.views import views

bp = Blueprint("system", __name__)


@bp.get("/api/interfaces")
def interfaces():
    return jsonify(views().interfaces())


@bp.get("/api/system")
def system():
    ext = current_app.extensions.get("external_ip")
    hooks = current_app.extensions.get("webhooks")
    return jsonify({**views().system(), "version": VERSION, "external_ip": ext.value if ext else None,
                    "webhook_last_error": hooks.last_error if hooks else None})


@bp.get("/healthz")
def healthz():
    ok, reasons = views().health()
    return jsonify(status="ok" if ok else "unhealthy", reasons=reasons), 200 if ok else 503
