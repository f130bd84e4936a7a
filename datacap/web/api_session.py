"""The test session: live stats and the Start / Pause / Resume / Stop / Reset controls."""
import psutil
from flask import Blueprint, current_app, jsonify, request

from datacap import config as configmod
from datacap.measure import session_file
from datacap.usage import lines
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

bp = Blueprint("session", __name__)

START_FIELDS = {  # start-request field: (config rule it follows, downloader flag)
    "streams": ("streams", "--streams"),
    "limit_gb": ("session_limit_gb", "--limit-gb"),
    "urls": ("test_urls", "--url"),
}


def start_args(body, cfg):
    """Optional overrides in a Start body, checked by the same rules as config.json; `line`, a configured one."""
    unknown = set(body) - set(START_FIELDS) - {"line"}
    if unknown:
        raise BadRequest(f"unknown field(s) in start request: {', '.join(sorted(unknown))}")
    args, errors = [], {}
    if "line" in body:
        name = body.pop("line")
        if not isinstance(name, str) or lines.by_name(cfg, name) is None:
            errors["line"] = f"no line is called {name!r} (the lines: {', '.join(x.name for x in lines.of(cfg))})"
        else:
            args += ["--line", name]
    for field, value in body.items():
        rule, flag = START_FIELDS[field]
        message = configmod.CHECKS[rule](value)
        if message:
            errors[field] = message
        elif value is not None:
            for v in (value if isinstance(value, list) else [value]):
                args += [flag, str(v)]
    if errors:
        raise BadRequest("invalid start request; nothing was started", errors)
    return args


@bp.get("/api/meta")
def meta():
    """What the dashboard needs to know about the statuses: their names and the actions each allows."""
    return jsonify(statuses=[s.value for s in session_file.Status],
                   actions={s.value: a for s, a in session_file.ACTIONS.items()},
                   live=[s.value for s in session_file.LIVE])


@bp.get("/api/stats")
def stats():
    body = views().stats_json(request.args.get("since", type=float))
    return current_app.response_class(body, mimetype="application/json")


@bp.post("/api/<any(start, pause, resume, stop):action>")
def control(action):
    supervisor = views().supervisor
    if supervisor is None:
        return jsonify(error="no supervisor in this app"), 503
    extra = start_args(json_body(), views().cfg) if action == "start" else ()
    ok, result = supervisor.control(action, extra)
    return (jsonify(status=result), 200) if ok else (jsonify(error=result), 409)


@bp.post("/api/reset")
def reset():
    v = views()
    if v.supervisor is not None and v.supervisor.downloader.alive:
        proc = v.supervisor.snapshot().get("downloader")
        if session_file.effective(v.downloader.read(), proc, psutil.pid_exists)[1] not in session_file.DONE:
            return jsonify(error="stop the running test before resetting"), 409
        v.supervisor.forget_session_on_exit()  # it has ended and is exiting: whatever it still writes goes too
    with v.state_lock:
        for path in session_file.paths(v.data_dir):
            path.unlink(missing_ok=True)
    return jsonify(status=session_file.Status.IDLE.value,  # history.json keeps the test (measure/history.py)
                   message="Cleared the last test from the dashboard; it stays in History.")
