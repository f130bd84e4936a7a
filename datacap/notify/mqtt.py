"""MQTT for Home Assistant: retained discovery configs, a retained state on change, availability with a
last will, and (with "commands": true) Start/Stop through the supervisor.

paho's own thread does all network I/O and reconnects with back-off (a broker that is down or refuses
the credentials is retried, and shown in /api/system); this module's thread reads the Views and
publishes, and runs commands, so neither ever waits on the broker inside a request or a child.
"""
import json
import logging
import os
import queue
import socket
import threading
import time

from datacap.fleet.settings import site_name
from datacap.measure.probe import file as probe_file
from datacap.notify import discovery
from datacap.notify.settings import mqtt_settings
from datacap.devices import settings as devices_settings
from datacap.usage import lines
from datacap.web import devices_view

log = logging.getLogger("mqtt")

TICK_S = 1.0
STATE_MIN_INTERVAL_S = 5.0  # states on change, at most this often
KEEPALIVE_S = 15  # the broker publishes the last will ~1.5 keep-alives after the host goes silent
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60


def warn_if_readable(config_path, settings):
    """A broker password in a config.json others can read is worth a line in the log."""
    try:
        mode = os.stat(config_path).st_mode
    except (OSError, TypeError):
        return
    if settings["password"] and mode & 0o077:
        log.warning("%s holds the MQTT password and is readable by other users: chmod 600 it", config_path)


class MqttBridge:
    """One paho client per settings; restart() when the settings change (SIGHUP, PUT /api/config)."""

    def __init__(self, views, clock=time.monotonic, host=None):
        self.views, self.clock = views, clock
        self.probes = probe_file.Reader(views.data_dir)
        self.host = host or socket.gethostname()
        self.node = discovery.node_id(self.host)
        self.site = None  # the name the published discovery configs carry
        self.client = self.settings = self.topics = None
        self.commands = queue.SimpleQueue()  # from paho's thread to ours
        self._fresh_connection = threading.Event()
        self._last_state, self._last_state_at = None, None
        self._lines_published = ()  # the lines after the first whose entities are out there
        self._devices_published = {}  # mac -> name of the LAN devices whose entities are out there (opt-in)
        self._closing = False  # our own disconnect: not worth a warning
        self._status = {"connected": False, "last_error": None, "connected_since": None, "connects": 0,
                        "failures": 0}
        self._stop = threading.Event()

    # paho's thread: record, hand over, never block
    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self._failed(f"broker refused the connection: {reason}")
            return
        self._status.update(connected=True, last_error=None, connects=self._status["connects"] + 1,
                            connected_since=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        if self.settings["commands"]:
            client.subscribe(self.topics.command, qos=1)
        self._fresh_connection.set()

    def _on_connect_fail(self, client, userdata):
        self._failed("cannot reach the broker")

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        if self._status["connected"] and not self._closing:
            log.warning("disconnected from the MQTT broker (%s); reconnecting with back-off", reason)
        self._status["connected"] = False

    def _on_message(self, client, userdata, msg):
        self.commands.put_nowait(msg.payload.decode("utf-8", "replace").strip().lower())

    def _failed(self, why):
        if why != self._status["last_error"]:
            log.warning("MQTT %s:%s: %s; retrying with back-off", self.settings["host"], self.settings["port"], why)
        self._status.update(connected=False, last_error=why, failures=self._status["failures"] + 1)

    # our thread
    def connect(self, settings):
        import paho.mqtt.client as mqtt  # only a server with MQTT configured loads paho
        self.settings, self.topics = settings, discovery.Topics(settings, self.node)
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                        client_id=f"datacap-{self.node}", protocol=mqtt.MQTTv311)
        if settings["username"] is not None:
            c.username_pw_set(settings["username"], settings["password"])
        if settings["tls"]:
            c.tls_set()  # the system's CAs
        c.will_set(self.topics.availability, "offline", qos=1, retain=True)
        c.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        c.on_connect, c.on_connect_fail, c.on_disconnect = self._on_connect, self._on_connect_fail, self._on_disconnect
        c.on_message = self._on_message
        c.connect_async(settings["host"], settings["port"], keepalive=KEEPALIVE_S)
        c.loop_start()
        self.client = c
        warn_if_readable(self.views.config_path, settings)

    def disconnect(self):
        """Say offline (a clean disconnect sends no last will), then stop paho's thread."""
        if self.client is None:
            return
        self._closing = True
        if self._status["connected"]:
            self.client.publish(self.topics.availability, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        self.client, self._closing = None, False
        self._status.update(connected=False, connected_since=None)

    def more_lines(self):
        """The configured lines after the first: each has entities of its own."""
        return tuple(x.name for x in lines.of(self.views.cfg)[1:]) if self.views.cfg.get("lines") else ()

    def devices_wanted(self):
        """{mac: name} of the LAN devices that get entities: none unless `devices.home_assistant` says so."""
        settings = devices_settings.of(self.views.cfg)
        if not settings or not settings.home_assistant:
            return {}
        return discovery.devices_wanted(devices_view.devices(self.views), self._devices_published)

    def publish_all(self):
        """After each (re)connect, change of lines, devices or the site's name: availability, discovery configs,
        the state; all retained. Availability goes first, so an entity is online the moment its config arrives."""
        self.client.publish(self.topics.availability, "online", qos=1, retain=True)
        self.site = site_name(self.views.cfg)
        now = self.more_lines()
        gone = tuple(x for x in self._lines_published if x not in now)
        devices = self.devices_wanted()
        configs = discovery.configs(self.topics, self.site, self.settings["commands"], now, gone) + \
            discovery.device_configs(self.topics, self.site, devices, [m for m in self._devices_published if m not in devices])
        for topic, payload in configs:
            self.client.publish(topic, json.dumps(payload) if payload else b"", qos=1, retain=True)
        self._lines_published, self._devices_published = now, devices
        self._last_state = None
        self.publish_state()

    def publish_state(self):
        """The state, if it changed and the last one is at least STATE_MIN_INTERVAL_S old."""
        now = self.clock()
        if self._last_state is not None and now - self._last_state_at < STATE_MIN_INTERVAL_S:
            return
        current = discovery.state(self.views, self.probes.read(), self._lines_published, self._devices_published,
                                  devices_view.devices(self.views) if self._devices_published else None)
        if current != self._last_state:
            self.client.publish(self.topics.state, json.dumps(current), qos=1, retain=True)
            self._last_state, self._last_state_at = current, now

    def run_commands(self):
        while True:
            try:
                action = self.commands.get_nowait()
            except queue.Empty:
                return
            if action not in discovery.BUTTONS or self.views.supervisor is None:
                log.warning("ignored MQTT command %r (expected one of %s)", action[:20], ", ".join(discovery.BUTTONS))
                continue
            ok, status = self.views.supervisor.control(action)
            log.info("MQTT command %s: %s", action, status if ok else f"refused: {status}")
            self._last_state = None  # show the new status without waiting out the interval

    def tick(self):
        wanted = mqtt_settings(self.views.cfg)
        if wanted != self.settings:
            self.disconnect()
            self.settings = None
            if wanted:
                self.connect(wanted)
        if self.client is None:
            return
        self.run_commands()
        changed = self._status["connected"] and (
            self.more_lines() != self._lines_published or site_name(self.views.cfg) != self.site
            or self.devices_wanted().keys() != self._devices_published.keys())  # lines, the device's name, devices
        if self._fresh_connection.is_set() or changed:
            self._fresh_connection.clear()
            self.publish_all()
        elif self._status["connected"]:
            self.publish_state()

    def status(self):
        """For /api/system: no password, and the broker's word when it refused us."""
        s = self.settings
        return {"enabled": s is not None, "broker": f"{s['host']}:{s['port']}" if s else None,
                "state_topic": self.topics.state if s else None, **self._status}

    def run(self):
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bug here must not end MQTT for good
                log.exception("MQTT loop error")
            self._stop.wait(TICK_S)
        self.disconnect()

    def start(self):
        self._thread = threading.Thread(target=self.run, name="mqtt", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=3.0):
        """Stop publishing and say offline; waits at most `timeout` for a broker that is not answering."""
        self._stop.set()
        self._thread.join(timeout)
