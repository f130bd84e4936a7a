"""Home Assistant MQTT discovery: the entities datacap offers, their retained configs, and the state they read.

One device per datacap host; every sensor reads one retained JSON state topic (as zigbee2mqtt does),
so a state change is one message, not twelve. Figures come from the same Views the API uses.
"""
import re
import socket
from datetime import date, datetime

from datacap import VERSION
from datacap.measure.probe import file as probe_file
from datacap.measure.session_file import Status
from datacap.usage import cycles

# object id: (component, name, extra config). value_template reads the state JSON's key of the same name.
GB = {"device_class": "data_size", "unit_of_measurement": "GB", "suggested_display_precision": 2}
MBPS = {"device_class": "data_rate", "unit_of_measurement": "Mbit/s", "state_class": "measurement",
        "suggested_display_precision": 1}
# A cycle's figure goes down after an ISP reading below datacap's count (or an undone one), so it is no
# total_increasing (Home Assistant takes any drop of 10 % as a new cycle and adds the whole value again):
# it is a `total` whose last_reset moves only when a cycle (or a day) begins, and whose corrections, up or
# down, Home Assistant's statistics follow as they are (sensor/recorder.py compile_statistics).
ENTITIES = {
    "cycle_used": ("sensor", "Cycle used", {**GB, "state_class": "total",
                                            "last_reset_value_template": "{{ value_json.cycle_start_at }}"}),
    "cycle_remaining": ("sensor", "Cycle remaining", {**GB, "state_class": "measurement"}),
    "cycle_percent": ("sensor", "Cap used", {"unit_of_measurement": "%", "state_class": "measurement",
                                             "icon": "mdi:gauge", "suggested_display_precision": 1}),
    "cycle_projected": ("sensor", "Projected at cycle end", {**GB, "state_class": "measurement"}),
    "daily_budget": ("sensor", "Daily budget", {**GB, "state_class": "measurement"}),
    "today": ("sensor", "Used today", {**GB, "state_class": "total",
                                       "last_reset_value_template": "{{ value_json.today_start_at }}"}),
    "test_status": ("sensor", "Test status", {"device_class": "enum", "options": [s.value for s in Status],
                                              "icon": "mdi:download-network"}),
    "test_speed": ("sensor", "Test speed", MBPS),
    "baseline_speed": ("sensor", "Baseline speed", MBPS),
    "last_probe_speed": ("sensor", "Last probe speed", MBPS),
    "throttled": ("binary_sensor", "Throttled", {"device_class": "problem", "payload_on": "ON",
                                                 "payload_off": "OFF"}),
    # the last finished test's verdict (history.json): it keeps its value after the test, until the next one ends
    "last_test_throttled": ("binary_sensor", "Last test throttled", {"device_class": "problem", "payload_on": "ON",
                                                                     "payload_off": "OFF"}),
    "last_test": ("sensor", "Last test", {"icon": "mdi:clipboard-text-clock",
                                          "value_template": "{{ value_json.last_test.verdict }}",
                                          "json_attributes_template": "{{ value_json.last_test | tojson }}"}),
}
BUTTONS = {"start": "Start test", "stop": "Stop test"}
PER_LINE = ("cycle_used", "cycle_remaining", "cycle_percent", "cycle_projected", "daily_budget", "today")  # each line's
RESETS = {"cycle_used": "cycle_start_at", "today": "today_start_at"}  # the state keys their last_reset reads


def slug(line):
    """A line's name as part of an entity's id: lines after the first get their own entities."""
    return re.sub(r"[^a-z0-9]+", "_", line.lower()).strip("_") or "line"


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


def _entity(topics, common, object_id, component, name, extra):
    attributes = {"json_attributes_topic": topics.state} if "json_attributes_template" in extra else {}
    return (topics.config(component, object_id), {
        "name": name, "unique_id": f"datacap_{topics.node}_{object_id}", "state_topic": topics.state,
        "value_template": f"{{{{ value_json.{object_id} }}}}", **extra, **attributes, **common})


def configs(topics, site, commands, more_lines=(), gone_lines=()):
    """(topic, payload or None) for every discovery config; None removes an entity (buttons when off, the
    entities of a line no longer configured). The first line's entities are the device's own; each line of
    `more_lines` gets its own ("Starlink Cycle used", cycle_used_starlink)."""
    common = {"availability_topic": topics.availability, "device": device(topics.node, site)}
    out = [_entity(topics, common, object_id, *spec) for object_id, spec in ENTITIES.items()]
    for line in (*more_lines, *gone_lines):
        for object_id in PER_LINE:
            component, name, extra = ENTITIES[object_id]
            if object_id in RESETS:
                extra = {**extra, "last_reset_value_template": f"{{{{ value_json.{RESETS[object_id]}_{slug(line)} }}}}"}
            topic, payload = _entity(topics, common, f"{object_id}_{slug(line)}", component, f"{line} {name}", extra)
            out.append((topic, payload if line in more_lines else None))
    for action, name in BUTTONS.items():
        payload = {"name": name, "unique_id": f"datacap_{topics.node}_{action}", "command_topic": topics.command,
                   "payload_press": action, "icon": "mdi:play" if action == "start" else "mdi:stop", **common}
        out.append((topics.config("button", action), payload if commands else None))
    return out


# Per LAN device (opt-in: devices.home_assistant), for the top devices this cycle and every one with a budget.
DEVICE_ENTITIES = {
    "cycle": ("sensor", "this cycle", {**GB, "state_class": "total",
                                       "last_reset_value_template": "{{ value_json.cycle_start_at }}"}),
    "today": ("sensor", "today", {**GB, "state_class": "total",
                                  "last_reset_value_template": "{{ value_json.today_start_at }}"}),
    "paused": ("binary_sensor", "paused", {"payload_on": "ON", "payload_off": "OFF", "icon": "mdi:lan-disconnect"}),
}
DEVICES_PUBLISHED = 20


def device_id(mac):
    return "device_" + mac.replace(":", "")


def devices_wanted(doc, before):
    """{mac: name} of the devices with entities: those already out there, the top ones this cycle, the budgeted."""
    out = dict(before)
    rows = doc.get("devices") or []
    for d in rows[:DEVICES_PUBLISHED] + [d for d in rows if d.get("budget_bytes")]:
        out.setdefault(d["mac"], d.get("name") or d["mac"])
    return out


def device_configs(topics, site, devices, gone=()):
    """(topic, payload or None) of every device entity; None removes those of `gone` (device counting turned off)."""
    common = {"availability_topic": topics.availability, "device": device(topics.node, site)}
    out = []
    for mac, name in [*devices.items(), *((m, m) for m in gone)]:
        for suffix, (component, label, extra) in DEVICE_ENTITIES.items():
            topic, payload = _entity(topics, common, f"{device_id(mac)}_{suffix}", component, f"{name} {label}", extra)
            out.append((topic, payload if mac in devices else None))
    return out


def device_state(doc, devices):
    rows = {d["mac"]: d for d in doc.get("devices") or []}
    out = {}
    for mac in devices:
        d = rows.get(mac, {})
        out.update({f"{device_id(mac)}_cycle": _gb(d.get("cycle_bytes") or 0),
                    f"{device_id(mac)}_today": _gb(d.get("today_bytes") or 0),
                    f"{device_id(mac)}_paused": "ON" if d.get("paused") else "OFF"})
    return out


def _gb(n):
    return round(n / 1e9, 3)


def _cycle_state(cycle, suffix=""):
    """A line's figures as the state's keys (suffixed for lines after the first)."""
    tz = datetime.now().astimezone().tzinfo
    values = {
        "cycle_used": _gb(cycle["used_bytes"]),
        "cycle_start_at": cycles.local_at(cycles.midnight(date.fromisoformat(cycle["start"]), tz), tz).isoformat(),
        "today_start_at": cycles.local_at(cycles.midnight(date.today(), tz), tz).isoformat(),
        "cycle_remaining": _gb(max(0, cycle["cap_bytes"] - cycle["used_bytes"])),
        "cycle_percent": cycle["percent"],
        "cycle_projected": _gb(cycle["projected_bytes"]),
        "daily_budget": _gb(cycle["daily_budget_bytes"]),
        "today": _gb(cycle["today_bytes"]),
    }
    return {k + suffix: v for k, v in values.items()}


def state(views, probes, more_lines=(), devices=None, devices_doc=None):
    """The state JSON: every entity's value, from the same Views the API uses (and probes.json's reader)."""
    stats = views.stats()
    out = _cycle_state(views.summary())  # usage_view()'s "cycle", without the daily and hourly history
    if devices:
        out.update(device_state(devices_doc or {}, devices))
    for line in more_lines:
        out.update(_cycle_state(views.summary(line), f"_{slug(line)}"))
    return {
        **out,
        "test_status": stats["status"],
        "test_speed": round(stats["speed_mbps"], 1),
        "baseline_speed": None if stats["baseline_speed"] is None else round(stats["baseline_speed"], 1),
        "last_probe_speed": None if (bps := probe_file.last_speed_bps(probes)) is None else round(bps / 1e6, 1),
        "throttled": "ON" if stats["throttle_detected"] else "OFF",
        **last_test(views.history.tests()),
    }


def last_test(tests):
    """The newest finished test's verdict, whether it found a throttle, and where (history.json, newest first)."""
    if not tests:
        return {"last_test_throttled": None, "last_test": {"verdict": None}}
    t = tests[0]
    steps = [{"at_gb": e.get("at_gb"), "from_mbps": e.get("baseline_mbps"), "to_mbps": e.get("throttled_mbps")}
             for e in t["events"] if e["kind"] == "throttle"]
    return {"last_test_throttled": "ON" if t["throttled"] else "OFF",
            "last_test": {"verdict": t["verdict"][:255], "id": t["id"], "ended": t["end"], "throttled": t["throttled"],
                          **(steps[0] if steps else {"at_gb": None, "from_mbps": None, "to_mbps": None}),
                          "steps": steps, "report": f"/report/{t['id']}"}}
