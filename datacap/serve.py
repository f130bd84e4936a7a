"""Serve the app and supervise the children until a signal says stop, in gunicorn's order.

Signal handlers only put the signal number on a queue; the main loop acts on it. SIGTERM/SIGINT:
refuse new work, close the listener, then stop the children. SIGHUP: reload config.json, pass it on.
"""
import gc
import logging
import os
import queue
import signal
import sys
import threading
import time
import webbrowser

import waitress

from datacap import VERSION, slow_clients
from datacap import config as configmod
from datacap.config import ROOT
from datacap.notify.mqtt import MqttBridge
from datacap.notify.notifier import Notifier
from datacap.web.external_ip import ExternalIP

log = logging.getLogger("server")

TICK_S = 0.2
SWITCH_INTERVAL_S = 0.0002
FREEZE_AGAIN_S = 60.0
# Requests are short (parsed files are cached until they change), so 8 threads serve hundreds of
# polls a second; idle clients are dropped after 30 s; bodies over 64 KB and headers over 32 KB
# are refused before they are read; poll() has no FD_SETSIZE limit and copes with the listener
# being closed from the main thread. Slow clients: slow_clients.py keeps 200 connections (a
# request must arrive whole within 10 s; a newcomer beyond 200 closes a slot nobody is being
# served on); connection_limit is only its backstop. X-Forwarded-* reach the app, which believes
# them from `trusted_proxies` only.
WAITRESS = dict(threads=8, connection_limit=slow_clients.MAX_CONNECTIONS + 16, channel_timeout=30,
                max_request_body_size=64 * 1024, max_request_header_size=32 * 1024, cleanup_interval=10,
                ident="datacap", asyncore_use_poll=True, clear_untrusted_proxy_headers=False)


def tune_for_pollers():
    """Many dashboards polling at once: no log line per request, no convoy behind the GIL.

    waitress warns "Task queue depth is N" for every request that waits for a thread: fifty open
    dashboards would write thousands of lines a second to the journal. Waiting a few milliseconds is
    normal under load; slow_clients.py reports the abnormal cases.
    waitress's loop thread makes a syscall per socket and so lets go of the GIL each time; a request
    thread that takes it may keep it for the whole switch interval (5 ms by default), and the loop,
    with fifty sockets to serve, stalls every client together (the convoy effect). A 0.2 ms interval
    bounds each wait; the server has no long computation that more switches would slow.
    Python's full garbage collections walk every object alive, the modules of Flask, Apprise and the rest
    included: 20-40 ms in the middle of a request, the slowest 1 % of /api/usage with a year of data (25 ms
    p99 against 7 ms without). What is loaded by now lives as long as the server: gc.freeze() leaves it out of
    those walks (run() freezes again after the first minute, when the first polls have loaded their share).
    """
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.freeze()


def systemd_unit():
    """deploy/datacap.service with this checkout's absolute paths."""
    home = str(ROOT).startswith(("/home/", "/root/", "/run/user/"))
    return ((ROOT / "deploy" / "datacap.service").read_text()
            .replace("@PYTHON@", sys.executable).replace("@HERE@", str(ROOT))
            .replace("@PROTECT_HOME@", "read-only" if home else "yes"))


def interactive():
    """A person at a desktop started us: not systemd, not a pipe, not an SSH session without a screen
    (where webbrowser would start a console browser in the terminal)."""
    desktop = sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return desktop and sys.stdin.isatty() and sys.stdout.isatty() and "INVOCATION_ID" not in os.environ


def listen(app, host, port):
    """The waitress server, bound but not yet serving; None (and a message) when the port is taken."""
    try:
        return slow_clients.guard(waitress.create_server(app, host=host, port=port, **WAITRESS))
    except OSError as exc:
        print(f"server: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return None


def run(app, server, supervisor, config_path, open_browser):
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    tune_for_pollers()
    signals = queue.SimpleQueue()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: signals.put_nowait(signum))
    views = app.extensions["datacap"]
    supervisor.start()
    app.extensions["notify"] = Notifier(views, views.data_dir).start()
    app.extensions["mqtt"] = MqttBridge(views).start()
    app.extensions["external_ip"] = ExternalIP(lambda: views.cfg).start()
    threading.Thread(target=server.run, name="waitress", daemon=True).start()
    host = getattr(server, "effective_host", "127.0.0.1")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{server.effective_port}/"
    log.info("datacap %s serving %s (data in %s)", VERSION, url, views.data_dir)
    if open_browser and interactive():
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    started = time.monotonic()
    try:
        while True:
            try:
                signum = signals.get(timeout=TICK_S)
            except queue.Empty:
                signum = None
            if started is not None and time.monotonic() - started >= FREEZE_AGAIN_S:
                started = None
                gc.freeze()  # what the first minute loaded (lazy imports, the notifier's destinations)
            if signum in (signal.SIGTERM, signal.SIGINT):
                break
            if signum == signal.SIGHUP:
                reload(app, config_path, supervisor)
            supervisor.tick()
    finally:
        log.info("stopping: listener first, then downloader and collector")
        supervisor.closing = True  # a request already inside gets "shutting down"
        server.close()
        supervisor.stop_all()
        app.extensions["mqtt"].stop()  # says "offline" to Home Assistant
    log.info("stopped")
    return 0


def reload(app, config_path, supervisor):
    """SIGHUP: re-read config.json (a bad file keeps the running settings) and pass it to the children."""
    try:
        fresh = configmod.load(config_path)
    except configmod.ConfigError as exc:
        log.error("config reload refused, keeping the previous settings: %s", exc)
        return
    views = app.extensions["datacap"]
    if (fresh["host"], fresh["port"]) != (views.cfg["host"], views.cfg["port"]):
        log.warning("host and port changes take effect at the next start")
    views.cfg = fresh
    supervisor.reload()
    log.info("config reloaded")
