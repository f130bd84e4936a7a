"""datacap web server: the dashboard, the JSON API, and the supervisor of both children.

    python server.py [--config PATH] [--data-dir DIR] [--host HOST] [--port PORT] [--no-browser]
"""
import csv
import io
import json
import logging
import os
import signal
import sys
import threading
import uuid
import webbrowser
from datetime import datetime, timezone
from pathlib import Path

import filelock
import waitress
from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

import child
import config as configmod
import jsonstore
import security
from external_ip import ExternalIP
from supervisor import Supervisor
from views import Views
from webhooks import Notifier

log = logging.getLogger("server")

VERSION = "0.1.0"
HERE = Path(__file__).resolve().parent
MAX_BODY = 64 * 1024
TICK_S = 0.2
# Requests are short (parsed files are cached until they change), so 8 threads serve hundreds of
# polls a second; 200 connections leave room for many dashboards and scrapers; idle clients are
# dropped after 30 s; bodies over 64 KB are refused before they are read.
WAITRESS = dict(threads=8, connection_limit=200, channel_timeout=30, max_request_body_size=MAX_BODY,
                cleanup_interval=10, ident="datacap")


def _body():
    body = request.get_json(silent=True, force=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


class BadRequest(Exception):
    def __init__(self, message, fields=None):
        super().__init__(message)
        self.fields = fields


def create_app(test_config=None, data_dir=None, config_path=None, supervisor=None):
    """Build the Flask app. No threads, no children, no signal handlers: main() does that."""
    cfg = configmod.validate(test_config or {}) if test_config is not None else configmod.load(config_path)
    data_dir = Path(data_dir or configmod.DEFAULT_DATA_DIR)
    config_path = Path(config_path or configmod.DEFAULT_CONFIG_PATH)
    app = Flask(__name__, static_folder=str(HERE / "static"), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    views = Views(cfg, data_dir, supervisor)
    app.extensions["datacap"] = views
    security.install(app, lambda: views.cfg)
    state_lock = filelock.FileLock(str(data_dir / "state.lock"))

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify(error=exc.description), exc.code

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error=str(exc), **({"fields": exc.fields} if exc.fields else {})), 400

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error: {type(exc).__name__}"), 500

    @app.get("/")
    def dashboard():
        return send_file(HERE / "dashboard.html", max_age=0)

    @app.post("/login")
    def login():
        token = views.cfg.get("auth_token")
        supplied = request.form.get("token", "")
        resp = app.redirect("/", 303)
        if token and security.same_token(supplied, token):
            resp.set_cookie(security.COOKIE, token, httponly=True, samesite="Strict", max_age=30 * 86400)
        return resp

    @app.get("/api/stats")
    def stats():
        since = request.args.get("since", type=float)
        return jsonify(views.stats(since))

    @app.post("/api/<any(start, pause, resume, stop):action>")
    def control(action):
        if supervisor is None:
            return jsonify(error="no supervisor in this app"), 503
        extra = start_args(_body()) if action == "start" else ()
        ok, result = supervisor.control(action, extra)
        return (jsonify(status=result), 200) if ok else (jsonify(error=result), 409)

    @app.post("/api/reset")
    def reset():
        if supervisor is not None and supervisor.downloader.alive:
            return jsonify(error="stop the running test before resetting"), 409
        with state_lock:
            (data_dir / "downloader.json").unlink(missing_ok=True)
        return jsonify(status="idle")

    @app.get("/api/usage")
    def usage_view():
        return jsonify(views.usage_view())

    @app.post("/api/usage/adjust")
    def adjust():
        body = _body()
        gb, nbytes = body.get("used_gb"), body.get("used_bytes")
        value = nbytes if nbytes is not None else (gb * 1e9 if configmod.is_number(gb) else None)
        if not configmod.is_number(value) or value < 0:
            raise BadRequest("send the ISP meter's reading for this cycle as used_gb (decimal GB) or used_bytes, >= 0")
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > 200:
            raise BadRequest("note must be a string of at most 200 characters")
        summary = views.summary()
        item = {"id": uuid.uuid4().hex[:8], "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "cycle_start": summary["start"], "isp_bytes": int(value), "counted_bytes": summary["counted_bytes"],
                "offset_bytes": int(value) - summary["counted_bytes"], "note": note, "undone": False}
        with state_lock:
            items = (jsonstore.read_json(data_dir / "adjustments.json") or {}).get("items", [])
            jsonstore.write_json_atomic(data_dir / "adjustments.json", {"items": (items + [item])[-100:]})
        return jsonify(item), 201

    @app.delete("/api/usage/adjust/<item_id>")
    def undo_adjust(item_id):
        with state_lock:
            items = (jsonstore.read_json(data_dir / "adjustments.json") or {}).get("items", [])
            match = [a for a in items if a.get("id") == item_id]
            if not match:
                return jsonify(error=f"no adjustment with id {item_id!r}"), 404
            match[0]["undone"] = True
            jsonstore.write_json_atomic(data_dir / "adjustments.json", {"items": items})
        return jsonify(match[0])

    @app.get("/api/interfaces")
    def interfaces():
        return jsonify(views.interfaces())

    @app.get("/api/system")
    def system():
        ext = app.extensions.get("external_ip")
        hooks = app.extensions.get("webhooks")
        return jsonify({**views.system(), "version": VERSION, "external_ip": ext.value if ext else None,
                        "webhook_last_error": hooks.last_error if hooks else None})

    @app.get("/api/config")
    def get_config():
        shown = {k: v for k, v in views.cfg.items() if k != "auth_token"}
        return jsonify({**shown, "auth_token_set": bool(views.cfg.get("auth_token"))})

    @app.put("/api/config")
    def put_config():
        body = _body()
        try:
            fresh = configmod.validate({**views.cfg, **body})
        except configmod.ConfigError as exc:
            raise BadRequest("invalid config; nothing was changed", exc.errors) from None
        with state_lock:
            on_disk = jsonstore.read_json(config_path) or {}
            jsonstore.write_json_atomic(config_path, {**on_disk, **body})
        restart = [k for k in ("host", "port") if fresh[k] != views.cfg[k]]
        views.cfg = fresh
        if supervisor is not None:
            supervisor.reload()
        log.info("config updated through the API: %s", ", ".join(sorted(body)) or "(no change)")
        return jsonify(status="applied", restart_required=restart)

    @app.get("/api/export")
    def export():
        fmt, what = request.args.get("format", "csv"), request.args.get("what", "samples")
        if fmt not in ("csv", "json") or what not in ("samples", "daily", "events"):
            raise BadRequest("use format=csv|json and what=samples|daily|events")
        rows = export_rows(views, what)
        name = f"datacap-{what}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "json":
            return Response(json.dumps(rows), mimetype="application/json", headers=headers)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS[what], lineterminator="\r\n")
        writer.writeheader()  # even with no rows yet: a spreadsheet still sees the columns
        writer.writerows(rows)
        return Response(out.getvalue(), mimetype="text/csv", headers=headers)

    @app.errorhandler(OSError)
    def disk_error(exc):  # a save that the disk refused (full, read-only): say so, nothing half-written
        log.error("cannot save on %s %s: %s", request.method, request.path, exc)
        return jsonify(error=f"cannot save: {exc.strerror or exc}; nothing was changed"), 503

    @app.get("/metrics")
    def metrics():
        import metrics as metricsmod  # prometheus-client only loads when scraped
        return Response(metricsmod.render(views), content_type=metricsmod.CONTENT_TYPE)

    @app.get("/healthz")
    def healthz():
        ok, reasons = views.health()
        return jsonify(status="ok" if ok else "unhealthy", reasons=reasons), 200 if ok else 503

    return app


START_FIELDS = {  # start-request field: (config rule it follows, downloader flag)
    "streams": ("streams", "--streams"),
    "limit_gb": ("session_limit_gb", "--limit-gb"),
    "urls": ("test_urls", "--url"),
}


def start_args(body):
    """Optional overrides in a Start body, checked by the same rules as config.json."""
    unknown = set(body) - set(START_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s) in start request: {', '.join(sorted(unknown))}")
    args, errors = [], {}
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


EXPORT_FIELDS = {
    "daily": ["date", "used_bytes", "used_gb"],
    "events": ["start", "end", "at_bytes", "at_gb", "baseline_mbps", "throttled_mbps"],
    "samples": ["elapsed_s", "time", "speed_mbps", "session_bytes"],
}


def export_rows(views, what):
    if what == "daily":
        return [{"date": d["date"], "used_bytes": d["used_bytes"], "used_gb": round(d["used_bytes"] / 1e9, 6)}
                for d in views.usage_view()["daily"]]
    stats = views.stats()
    if what == "events":
        return [{k: e.get(k) for k in EXPORT_FIELDS["events"]} for e in stats["throttle_events"]]
    points = {p["t"]: p for p in stats.get("history", []) + stats["data_points"]}
    return [{"elapsed_s": p["t"], "time": p["time"], "speed_mbps": p["mbps"], "session_bytes": p["bytes"]}
            for _, p in sorted(points.items())]


def systemd_unit():
    """deploy/datacap.service with this checkout's absolute paths."""
    home = str(HERE).startswith(("/home/", "/root/", "/run/user/"))
    return ((HERE / "deploy" / "datacap.service").read_text()
            .replace("@PYTHON@", sys.executable).replace("@HERE@", str(HERE))
            .replace("@PROTECT_HOME@", "read-only" if home else "yes"))


def interactive():
    """A person at a desktop started us: not systemd, not a pipe, not an SSH session without a screen
    (where webbrowser would start a console browser in the terminal)."""
    desktop = sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return desktop and sys.stdin.isatty() and sys.stdout.isatty() and "INVOCATION_ID" not in os.environ


def main(argv=None):
    p = child.base_parser("datacap: ISP data-cap tester and usage monitor.")
    p.add_argument("--host", default=os.environ.get("DATACAP_HOST"))
    p.add_argument("--port", type=int, default=os.environ.get("DATACAP_PORT"))
    p.add_argument("--no-browser", action="store_true", help="do not open the dashboard in a browser")
    p.add_argument("--version", action="version", version=f"datacap {VERSION}")
    p.add_argument("--print-systemd-unit", action="store_true",
                   help="print a systemd unit for this checkout (see deploy/datacap.service) and exit")
    args = p.parse_args(argv)
    if args.print_systemd_unit:
        print(systemd_unit(), end="")
        return 0
    child.setup_logging(args.log_level)
    config_path = Path(args.config or os.environ.get("DATACAP_CONFIG") or configmod.DEFAULT_CONFIG_PATH)
    cfg = child.load_config_or_exit(config_path, "server")
    host, port = args.host or cfg["host"], int(args.port or cfg["port"])
    if host not in configmod.LOOPBACK_HOSTS and not cfg["auth_token"]:  # --host / DATACAP_HOST
        print(f"server: refusing to listen on {host} without auth_token in config.json: anyone on the "
              "network could burn your data cap", file=sys.stderr)
        return configmod.EXIT_BAD_CONFIG
    data_dir = child.data_dir_from(args)
    lock = filelock.FileLock(str(data_dir / "server.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        print(f"server: another datacap server is already using {data_dir}", file=sys.stderr)
        return configmod.EXIT_BAD_CONFIG
    jsonstore.sweep_temp_files(data_dir)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sup = Supervisor(config_path, data_dir)
    app = create_app(cfg, data_dir, config_path, sup)
    try:
        server = waitress.create_server(app, host=host, port=port, **WAITRESS)
    except OSError as exc:
        print(f"server: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    sup.start()
    views = app.extensions["datacap"]
    app.extensions["webhooks"] = Notifier(views, data_dir).start()
    app.extensions["external_ip"] = ExternalIP(lambda: views.cfg).start()
    threading.Thread(target=server.run, name="waitress", daemon=True).start()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{server.effective_port}/"
    log.info("datacap %s serving %s (data in %s)", VERSION, url, data_dir)
    if interactive() and not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        while not stop.is_set():
            sup.tick()
            stop.wait(TICK_S)
    finally:
        log.info("stopping: downloader and collector first")
        sup.stop_all()
        server.close()
        lock.release()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
