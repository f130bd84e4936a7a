"""Lines: the connections a household pays for, each with its own counter, plan, alerts and stop_at_cap.

    "lines": [{"name": "Starlink", "source": {"type": "local", "interfaces": ["eth1"]},
               "data_cap_gb": 1000, "billing_day": 3, "alert_thresholds_percent": [90]},
              {"name": "Hotspot", "source": {"type": "snmp", "host": "192.168.8.1", "community": "public",
                                             "interface": "wwan0"},
               "plan": {"kind": "prepaid", "gb": 50, "start": "2026-11-09", "expires": "2026-12-09"}}]

A line's `source` is one counter (as in `sources`; a local one takes `interfaces`, "auto" by default: the
default-route interfaces no other line names). Its plan keys (data_cap_gb, billing_day, plan, count,
alert_thresholds_percent, stop_at_cap) default to the top-level ones. A config without `lines` is one line,
named "Internet", counted by what `sources` says counts.
"""
from dataclasses import dataclass

from datacap.usage import interfaces
from datacap.usage import plan as planmod
from datacap.usage.ledger_file import FIRST_LINE
from datacap.usage.sources import settings as source_settings

PLAN_KEYS = ("data_cap_gb", "billing_day", "plan", "count", "alert_thresholds_percent", "stop_at_cap")
KEYS = {"name", "source", *PLAN_KEYS}
AUTO = {"type": "auto"}  # the no-lines default: this computer, until a UPnP gateway is found and counted


@dataclass(frozen=True)
class Line:
    name: str
    source: dict  # the counter: {"type": "local", "interfaces": ...}, snmp, upnp, or AUTO
    plan: planmod.Plan
    count: str  # "both" directions count, or "download" only
    alert_thresholds_percent: tuple
    stop_at_cap: bool


def _counting_source(cfg):
    """The counter of the one line of a config without `lines`."""
    setting = cfg["sources"]
    if setting == "auto":
        return AUTO
    spec = setting[source_settings.counting(setting)]
    return {"type": "local", "interfaces": cfg["interfaces"]} if spec["type"] == "local" else spec


def _line(name, source, keys):
    return Line(name, source, planmod.build(keys), keys["count"], tuple(sorted(set(keys["alert_thresholds_percent"]))),
                keys["stop_at_cap"])


_built = (None, None)  # (config, its lines): a config is replaced whole, never changed in place


def of(cfg):
    """The configured lines, in order (the first is the one the top-level API keys describe)."""
    global _built
    if _built[0] is not cfg:
        if cfg.get("lines"):
            made = [_line(x["name"], {"interfaces": "auto", **x["source"]} if x["source"]["type"] == "local"
                          else x["source"], {**{k: cfg[k] for k in PLAN_KEYS}, **x}) for x in cfg["lines"]]
        else:
            made = [_line(FIRST_LINE, _counting_source(cfg), cfg)]
        _built = (cfg, made)
    return _built[1]


def by_name(cfg, name):
    """The line of that name; the first line for None; None when there is no such line."""
    found = of(cfg)
    return found[0] if name is None else next((x for x in found if x.name == name), None)


def for_tests(cfg, name=None, default_routes=None):
    """The line a test or probe runs over: the one named, else the one carrying the default route (a line
    on this machine's interfaces that holds it), else the first."""
    if name is not None:
        return by_name(cfg, name)
    if default_routes is None:
        from datacap.usage.interfaces import default_route_interfaces as default_routes
    via = default_routes()
    return next((x for x in of(cfg) if x.source["type"] == "local" and x.source.get("interfaces") != "auto"
                 and via & set(x.source["interfaces"])), of(cfg)[0])


def local_interfaces(found, setting, counters, default_routes):
    """{interface: line} of the lines counted on this machine's interfaces; "auto" takes the default-route
    interfaces no other line names (`setting`: the top-level `interfaces`, for the one line of a config without
    `lines`). Without such a line, the `interfaces` setting is shown, not counted."""
    local = [(x.name, x.source.get("interfaces", setting)) for x in found if x.source["type"] in ("local", "auto")]
    named = {n for _, names in local if names != "auto" for n in names}
    out = {}
    for line, names in local:
        if names == "auto":
            names = [n for n in interfaces.counted_interfaces("auto", counters, default_routes) if n not in named]
        out.update({n: line for n in names})
    return out


def device_of(line):
    """The interface a test over this line binds its streams to: its first named one; None to follow routing."""
    names = line.source.get("interfaces") if line.source["type"] == "local" else None
    return names[0] if isinstance(names, list) and names else None


def router_specs(cfg):
    """[(router source spec, the line it counts toward or None)] to poll; "auto" for the no-lines default."""
    if not cfg.get("lines"):
        setting = cfg["sources"]
        if setting == "auto":
            return "auto"
        counting = source_settings.counting(setting)
        return [(s, FIRST_LINE if i == counting else None) for i, s in enumerate(setting) if s["type"] != "local"]
    return [(x.source, x.name) for x in of(cfg) if x.source["type"] != "local"]


def check(v, checks):
    """Config rule for `lines` (checks: config.py's rule per plan key): None, or one message naming the line
    and key. Two lines with one name, one counter in two lines, a line without a counter are refused."""
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        return "must be a list of lines, each {\"name\": ..., \"source\": {...}}, or null"
    names, counters = {}, {}
    for i, x in enumerate(v):
        where = f"lines[{i + 1}]"
        if not isinstance(x, dict):
            return f"{where}: must be an object with a name and a source"
        name = x.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 40:
            return f"{where}: name must be a text of 1 to 40 characters, got {name!r}"
        where = f"{where} ({name})"
        unknown = sorted(set(x) - KEYS)
        if unknown:
            return f"{where}: unknown key {unknown[0]!r}"
        if name.lower() in names:
            return f"{where}: name: {names[name.lower()]} has that name too"
        names[name.lower()] = f"lines[{i + 1}]"
        if "source" not in x:
            return f"{where}: source: every line needs its counter (local interfaces, an SNMP interface or a UPnP gateway)"
        problem = source_settings.check_source(x["source"], f"{where}: source", source_settings.LINE_FIELDS)
        if problem:
            return problem
        for key in PLAN_KEYS:
            message = key in x and checks[key](x[key])
            if message:
                return f"{where}: {key}: {message}"
        for counter in source_settings.counter_keys(x["source"]):
            if counter in counters:
                return f"{where}: source: {counter} is already the counter of line {counters[counter]!r}"
            counters[counter] = name
    return None
