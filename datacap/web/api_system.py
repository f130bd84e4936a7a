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
    notify, mqtt = current_app.extensions.get("notify"), current_app.extensions.get("mqtt")
    notify_status = notify.status() if notify else None
    last = (notify_status or {}).get("last_error")
    return jsonify({**views().system(), "version": VERSION, "external_ip": ext.value if ext else None,
                    "notify": notify_status, "mqtt": mqtt.status() if mqtt else None,
                    "webhook_last_error": f"{last['event']}: {last['error']}" if last else None})


@bp.get("/healthz")
def healthz():
    ok, reasons = views().health()
    return jsonify(status="ok" if ok else "unhealthy", reasons=reasons), 200 if ok else 503
