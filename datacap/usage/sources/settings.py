"""The `sources` setting: "auto" or a list of counter sources, exactly one of which counts toward the cap.

    "sources": "auto"
    "sources": [{"type": "snmp", "host": "192.168.1.1", "community": "public", "interface": "wan"},
                {"type": "local", "counts": false}]

local: this machine's interfaces (the `interfaces` key). upnp: an Internet Gateway Device, found by
SSDP or at `url` (its description URL). snmp: `host`, `port` (161), `community` (v2c) or v3 `user`,
`auth_key`, `priv_key`; `interface` by ifName/ifDescr. Router sources take `interval_seconds` (5).
A list with one router source and no `counts` anywhere counts the router.
"""
from urllib.parse import urlparse

FIELDS = {
    "local": {"type", "counts"},
    "upnp": {"type", "counts", "url", "interval_seconds"},
    "snmp": {"type", "counts", "host", "port", "community", "user", "auth_key", "priv_key", "interface",
             "interval_seconds"},
}
DEFAULT_INTERVAL_S = 5.0


# a line's counter: what it is, never whether it counts (it does)
LINE_FIELDS = {"local": {"type", "interfaces"}, "upnp": FIELDS["upnp"] - {"counts"}, "snmp": FIELDS["snmp"] - {"counts"}}


def check_source(s, where, fields=FIELDS):
    """The problem with one source (`where` names it: "item 2", "lines[1] (Starlink): source"), or None."""
    if not isinstance(s, dict) or s.get("type") not in fields:
        return f'{where}: needs "type": "local", "upnp" or "snmp"'
    kind = s["type"]
    where = f"{where} ({kind})" if where.startswith("item") else where
    unknown = sorted(set(s) - fields[kind])
    if unknown:
        return f"{where}: unknown key {unknown[0]!r}"
    if "counts" in s and not isinstance(s["counts"], bool):
        return f"{where}: counts must be true or false"
    iv = s.get("interval_seconds", DEFAULT_INTERVAL_S)
    if isinstance(iv, bool) or not isinstance(iv, (int, float)) or not 1 <= iv <= 300:
        return f"{where}: interval_seconds must be a number from 1 to 300"
    if kind == "upnp" and "url" in s:
        u = urlparse(s["url"]) if isinstance(s["url"], str) else None
        if not u or u.scheme != "http" or not u.hostname:
            return f"{where}: url must be the gateway's http:// description URL"
    if kind == "local" and "interfaces" in s and s["interfaces"] != "auto" and not (
            isinstance(s["interfaces"], list) and s["interfaces"] and all(isinstance(n, str) and n for n in s["interfaces"])):
        return f'{where}: interfaces must be "auto" or a non-empty list of interface names'
    if kind == "snmp":
        return _check_snmp(where, s)
    return None


def _check_snmp(where, s):
    if not isinstance(s.get("host"), str) or not s["host"] or " " in s["host"]:
        return f"{where}: host must be the router's address"
    port = s.get("port", 161)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return f"{where}: port must be a whole number from 1 to 65535"
    if not isinstance(s.get("interface"), str) or not s["interface"]:
        return f'{where}: interface must name the router\'s WAN interface (its ifName, e.g. "wan")'
    v2c, v3 = "community" in s, "user" in s
    if v2c == v3:
        return f"{where}: give community (v2c) or user (v3), not both or neither"
    for key in ("community", "user", "auth_key", "priv_key"):
        if key in s and (not isinstance(s[key], str) or not s[key]):
            return f"{where}: {key} must be a non-empty string"
    for key in ("auth_key", "priv_key"):
        if key in s and len(s[key]) < 8:
            return f"{where}: {key} must have at least 8 characters (SNMPv3)"
    if "priv_key" in s and "auth_key" not in s:
        return f"{where}: priv_key needs auth_key"
    return None


def counter_keys(s):
    """What a line's source counts, as keys two lines must not share (an interface, a router's port)."""
    if s["type"] == "local":
        names = s.get("interfaces", "auto")
        return ["this computer's interfaces (auto)"] if names == "auto" else [f"interface {n}" for n in names]
    if s["type"] == "snmp":
        return [f"{s['host']}:{s.get('port', 161)} interface {s['interface']}"]
    return [s.get("url") or "the UPnP gateway (searched for)"]


def counting(sources):
    """Which item of a valid list counts toward the cap (its index)."""
    explicit = [i for i, s in enumerate(sources) if s.get("counts") is True]
    if explicit:
        return explicit[0]
    routers = [i for i, s in enumerate(sources) if s["type"] != "local" and s.get("counts") is not False]
    if routers:
        return routers[0]
    return next(i for i, s in enumerate(sources) if s.get("counts") is not False)


def check(v):
    """Config rule for `sources`: None when good, else one line naming the problem."""
    if v == "auto":
        return None
    if not isinstance(v, list) or not v:
        return f'must be "auto" or a non-empty list of sources, got {v!r}'
    for i, s in enumerate(v):
        problem = check_source(s, f"item {i + 1}")
        if problem:
            return problem
    if sum(1 for s in v if s.get("counts") is True) > 1:
        return "only one source may count toward the cap (counts: true)"
    if all(s.get("counts") is False for s in v):
        return "one source must count toward the cap"
    return None
