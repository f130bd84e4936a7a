"""Home Assistant MQTT discovery: the entities datacap offers, their retained configs, and the state they read.

One device per datacap host; every sensor reads one retained JSON state topic (as zigbee2mqtt does),
so a state change is one message, not twelve. Figures come from the same Views the API uses.
"""
import re
import socket

from datacap import VERSION
from datacap.measure import probe_file
from datacap.measure.session_file import Status

# object id: (component, name, extra config). value_template reads the state JSON's key of the same name.
GB = {"device_class": "data_size", "unit_of_measurement": "GB", "suggested_display_precision": 2}
MBPS = {"device_class": "data_rate", "unit_of_measurement": "Mbit/s", "state_class": "measurement",
        "suggested_display_precision": 1}
ENTITIES = {
    "cycle_used": ("sensor", "Cycle used", {**GB, "state_class": "total_increasing"}),
    "cycle_remaining": ("sensor", "Cycle remaining", {**GB, "state_class": "measurement"}),
    "cycle_percent": ("sensor", "Cap used", {"unit_of_measurement": "%", "state_class": "measurement",
                                             "icon": "mdi:gauge", "suggested_display_precision": 1}),
    "cycle_projected": ("sensor", "Projected at cycle end", {**GB, "state_class": "measurement"}),
    "daily_budget": ("sensor", "Daily budget", {**GB, "state_class": "measurement"}),
    "today": ("sensor", "Used today", {**GB, "state_class": "total_increasing"}),
    "test_status": ("sensor", "Test status", {"device_class": "enum", "options": [s.value for s in Status],
                                              "icon": "mdi:download-network"}),
    "test_speed": ("sensor", "Test speed", MBPS),
    "baseline_speed": ("sensor", "Baseline speed", MBPS),
    "last_probe_speed": ("sensor", "Last probe speed", MBPS),
    "throttled": ("binary_sensor", "Throttled", {"device_class": "problem", "payload_on": "ON",
                                                 "payload_off": "OFF"}),
}
BUTTONS = {"start": "Start test", "stop": "Stop test"}


def node_id(host=None):
    """This host as an MQTT topic level and a Home Assistant id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", host or socket.gethostname()).lower() or "datacap"


class Topics:
    """Every topic of this host: base/state, base/availability, base/command; discovery configs."""

    def __init__(self, settings, node):
        self.node, self.discovery = node, settings["discovery_prefix"]
        self.base = f"{settings['topic_prefix']}/{node}"
        self.state, self.availability, self.command = (f"{self.base}/{t}" for t in ("state", "availability", "command"))

    def config(self, component, object_id):
        return f"{self.discovery}/{component}/{self.node}/{object_id}/config"


def device(node, site):
    """The Home Assistant device: its id stays the host's (entities keep their ids), its name is the site."""
    return {"identifiers": [f"datacap_{node}"], "name": f"datacap {site}", "manufacturer": "datacap",
            "model": "data-cap tester and usage monitor", "sw_version": VERSION}


def configs(topics, site, commands):
    """(topic, payload or None) for every discovery config; None removes an entity (buttons when off)."""
    common = {"availability_topic": topics.availability, "device": device(topics.node, site)}
    out = []
    for object_id, (component, name, extra) in ENTITIES.items():
        out.append((topics.config(component, object_id), {
            "name": name, "unique_id": f"datacap_{topics.node}_{object_id}", "state_topic": topics.state,
            "value_template": f"{{{{ value_json.{object_id} }}}}", **extra, **common}))
    for action, name in BUTTONS.items():
        payload = {"name": name, "unique_id": f"datacap_{topics.node}_{action}", "command_topic": topics.command,
                   "payload_press": action, "icon": "mdi:play" if action == "start" else "mdi:stop", **common}
        out.append((topics.config("button", action), payload if commands else None))
    return out


def _gb(n):
    return round(n / 1e9, 3)


def state(views, probes):
    """The state JSON: every entity's value, from the same Views the API uses (and probes.json's reader)."""
    cycle = views.summary()  # usage_view()'s "cycle", without the daily and hourly history
    stats = views.stats()
    return {
        "cycle_used": _gb(cycle["used_bytes"]),
        "cycle_remaining": _gb(max(0, cycle["cap_bytes"] - cycle["used_bytes"])),
        "cycle_percent": cycle["percent"],
        "cycle_projected": _gb(cycle["projected_bytes"]),
        "daily_budget": _gb(cycle["daily_budget_bytes"]),
        "today": _gb(cycle["today_bytes"]),
        "test_status": stats["status"],
        "test_speed": round(stats["speed_mbps"], 1),
        "baseline_speed": None if stats["baseline_speed"] is None else round(stats["baseline_speed"], 1),
        "last_probe_speed": None if (bps := probe_file.last_speed_bps(probes)) is None else round(bps / 1e6, 1),
        "throttled": "ON" if stats["throttle_detected"] else "OFF",
    }
