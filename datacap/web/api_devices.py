"""Devices on the LAN: their usage, budgets, and pausing one (issue 26).

GET /api/devices; GET /api/devices/<mac> (with its daily history); POST /api/devices/<mac>/pause
({"until": null | "tomorrow" | "cycle"}) and /unpause; PUT and DELETE /api/devices/<mac>/budget ({"gb", "per"});
PUT /api/devices/<mac>/name. Every change is a state-changing request under the same origin, Host and token rules
as Start (security.py guards them all). A pause is a request the collector applies within half a second
(devices/requests.py); budgets and names are config.json's `devices` key, saved as PUT /api/config saves it.
"""
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import Conflict, NotFound

from datacap.devices import budgets, requests
from datacap.devices import settings as devices_settings
from datacap.web import api_config, devices_view
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

bp = Blueprint("devices", __name__)
HISTORY_DAYS = 400


def _mac(text):
    mac = devices_settings.mac(text)
    if mac is None:
        raise NotFound(f"{text!r} is not a MAC address (like aa:bb:cc:dd:ee:ff)")
    return mac


def _counting(v):
    if not v.cfg.get("devices"):
        raise Conflict('device counting is off: set "devices" (the gateway\'s LAN interfaces) in the settings first')


@bp.get("/api/devices")
def list_devices():
    return jsonify(devices_view.devices(views()))


@bp.get("/api/devices/<mac_text>")
def one_device(mac_text):
    v, mac = views(), _mac(mac_text)
    days = request.args.get("days", str(HISTORY_DAYS))
    if not days.isdigit() or not 1 <= int(days) <= HISTORY_DAYS:
        raise BadRequest(f"days must be a whole number from 1 to {HISTORY_DAYS}")
    found = next((d for d in devices_view.devices(v)["devices"] if d["mac"] == mac), None)
    if found is None and not devices_view.known(v, mac):
        raise NotFound(f"no device {mac} is known")
    return jsonify({**(found or {"mac": mac}), "daily": devices_view.history(v, mac, int(days))})


def _request(mac_text, action):
    v, mac = views(), _mac(mac_text)
    _counting(v)
    body = json_body()
    unknown = sorted(set(body) - {"until"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    until = body.get("until")
    if until not in budgets.UNTIL or (action == "unpause" and until is not None):
        raise BadRequest('until must be null (until unpaused), "tomorrow" or "cycle" (until the cycle resets)')
    if not devices_view.known(v, mac):
        raise NotFound(f"no device {mac} is known")
    with v.state_lock:
        item = requests.add(v.data_dir, mac, action, until)
    return jsonify(status=f"{action} requested", request=item), 202


@bp.post("/api/devices/<mac_text>/pause")
def pause(mac_text):
    return _request(mac_text, "pause")


@bp.post("/api/devices/<mac_text>/unpause")
def unpause(mac_text):
    return _request(mac_text, "unpause")


def _save_devices_key(v, mac, key, value):
    """devices.<key>.<mac> set to value (None removes it), saved like PUT /api/config."""
    current = dict(v.cfg.get("devices") or {})
    entries = {devices_settings.mac(k): x for k, x in (current.get(key) or {}).items()}
    if value is None:
        entries.pop(mac, None)
    else:
        entries[mac] = value
    return api_config.apply(v, {"devices": {**current, key: entries}})


@bp.put("/api/devices/<mac_text>/budget")
def set_budget(mac_text):
    v, mac = views(), _mac(mac_text)
    _counting(v)
    return jsonify(_save_devices_key(v, mac, "budgets", json_body(required=True)))


@bp.delete("/api/devices/<mac_text>/budget")
def remove_budget(mac_text):
    v, mac = views(), _mac(mac_text)
    _counting(v)
    return jsonify(_save_devices_key(v, mac, "budgets", None))


@bp.put("/api/devices/<mac_text>/name")
def set_name(mac_text):
    v, mac = views(), _mac(mac_text)
    _counting(v)
    body = json_body(required=True)
    name = body.get("name")
    return jsonify(_save_devices_key(v, mac, "names", None if name in (None, "") else name))
