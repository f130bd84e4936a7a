"""The `devices` setting: counting LAN devices on a Linux gateway (and/or a UniFi controller), names, budgets.

    "devices": {"lan": ["br-lan"],
                "names": {"aa:bb:cc:dd:ee:ff": "Kids' tablet"},
                "budgets": {"aa:bb:cc:dd:ee:ff": {"gb": 5, "per": "day"}},
                "leases": ["/var/lib/misc/dnsmasq.leases"],
                "unifi": {"url": "https://192.168.1.1", "username": "datacap", "password": "...", "site": "default"},
                "home_assistant": false}

`lan`: the gateway's LAN interfaces (its devices' traffic to and from every other interface is counted); `leases`:
DHCP lease files to name devices by (dnsmasq's, or odhcpd's on OpenWrt; default: the usual places); `unifi`: a UniFi
Network controller whose clients' byte counters are read; `home_assistant`: a sensor per device over MQTT (opt-in).
null turns device counting off. MACs are written any case, with ":" or "-"; they are kept as aa:bb:cc:dd:ee:ff.
"""
import difflib
import re
from urllib.parse import urlparse

KEYS = ("lan", "names", "budgets", "leases", "unifi", "home_assistant")
UNIFI_KEYS = ("url", "username", "password", "api_key", "site", "verify_tls", "interval_seconds")
PER = ("cycle", "day")
GB_RANGE = (0.001, 1_000_000)
NAME_CHARS = 40
IFNAME = re.compile(r"^[^\s/:\"'\\]{1,15}$")  # what the kernel takes as an interface name
MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
DEFAULT_LEASES = ("/var/lib/misc/dnsmasq.leases", "/tmp/dhcp.leases", "/tmp/hosts/odhcpd", "/tmp/odhcpd.leases")
UNIFI_INTERVAL_S = 30


def mac(v):
    """A MAC as datacap keeps it (lowercase, colons), or None when v is not one."""
    if not isinstance(v, str) or not MAC.match(v.strip().lower()):
        return None
    return v.strip().lower().replace("-", ":")


def _unknown(keys, allowed, where):
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            return f"{where}unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return None


def _by_mac(v, what, check_one):
    if not isinstance(v, dict):
        return f"{what}: must be an object keyed by MAC address, like {{\"aa:bb:cc:dd:ee:ff\": ...}}"
    seen = set()
    for key, item in v.items():
        m = mac(key)
        if m is None:
            return f"{what}: {key!r} is not a MAC address (like aa:bb:cc:dd:ee:ff)"
        if m in seen:
            return f"{what}: {key!r} is listed twice"
        seen.add(m)
        problem = check_one(item)
        if problem:
            return f"{what}: {m}: {problem}"
    return None


def _name(v):
    ok = isinstance(v, str) and v.strip() and len(v) <= NAME_CHARS and v.isprintable()
    return None if ok else f"must be a name of 1 to {NAME_CHARS} printable characters, got {v!r}"


def _budget(v):
    if not isinstance(v, dict):
        return 'must be {"gb": number, "per": "cycle" or "day"}'
    problem = _unknown(v, ("gb", "per"), "")
    if problem:
        return problem
    gb = v.get("gb")
    if isinstance(gb, bool) or not isinstance(gb, (int, float)) or not GB_RANGE[0] <= gb <= GB_RANGE[1]:
        return f"gb must be a number from {GB_RANGE[0]} to {GB_RANGE[1]}, got {gb!r}"
    if v.get("per", "cycle") not in PER:
        return f'per must be "cycle" or "day", got {v.get("per")!r}'
    return None


def _unifi(v):
    if not isinstance(v, dict):
        return 'must be null or {"url": "https://192.168.1.1", "username": ..., "password": ...} (or "api_key")'
    problem = _unknown(v, UNIFI_KEYS, "")
    if problem:
        return problem
    u = urlparse(v.get("url")) if isinstance(v.get("url"), str) else None
    if not u or u.scheme not in ("http", "https") or not u.hostname:
        return "url must be the controller's address, like https://192.168.1.1 or https://unifi:8443"
    if ("api_key" in v) == ("username" in v):
        return "give username and password, or api_key (UniFi OS 4 and later), not both or neither"
    for key in ("username", "password", "api_key", "site"):
        if key in v and (not isinstance(v[key], str) or not v[key] or len(v[key]) > 200):
            return f"{key} must be a non-empty string"  # never echo a secret
    if "username" in v and "password" not in v:
        return "username needs password"
    if not isinstance(v.get("verify_tls", True), bool):
        return "verify_tls must be true or false"
    iv = v.get("interval_seconds", UNIFI_INTERVAL_S)
    if isinstance(iv, bool) or not isinstance(iv, (int, float)) or not 5 <= iv <= 3600:
        return "interval_seconds must be a number from 5 to 3600"
    return None


def check(v):
    """Config rule for `devices`: None, or one message naming the key."""
    if v is None:
        return None
    if not isinstance(v, dict):
        return 'must be null or an object like {"lan": ["br-lan"]}'
    problem = _unknown(v, KEYS, "")
    if problem:
        return problem
    if "lan" not in v and not v.get("unifi"):
        return 'lan: name the gateway\'s LAN interfaces (like ["br-lan"]), or give unifi (a UniFi controller)'
    lan = v.get("lan", [])
    if not isinstance(lan, list) or ("lan" in v and not lan) or not all(isinstance(n, str) and IFNAME.match(n) for n in lan):
        return f"lan: must be a non-empty list of interface names, got {lan!r}"
    for key, rule in (("names", lambda x: _by_mac(x, "names", _name)), ("budgets", lambda x: _by_mac(x, "budgets", _budget))):
        if key in v:
            problem = rule(v[key])
            if problem:
                return problem
    leases = v.get("leases", [])
    if not isinstance(leases, list) or not all(isinstance(p, str) and p.startswith("/") for p in leases):
        return f"leases: must be a list of absolute paths of DHCP lease files, got {leases!r}"
    if v.get("unifi") is not None:
        problem = _unifi(v["unifi"])
        if problem:
            return f"unifi: {problem}"
    if not isinstance(v.get("home_assistant", False), bool):
        return "home_assistant: must be true or false"
    return None


class Settings:
    """The `devices` object, checked, with defaults and MACs normalized; None when device counting is off."""

    def __init__(self, raw):
        self.lan = tuple(raw.get("lan", ()))
        self.names = {mac(k): v.strip() for k, v in (raw.get("names") or {}).items()}
        self.budgets = {mac(k): (int(round(b["gb"] * 1e9)), b.get("per", "cycle"))
                        for k, b in (raw.get("budgets") or {}).items()}
        self.leases = tuple(raw.get("leases") or DEFAULT_LEASES)
        self.unifi = {"site": "default", "verify_tls": True, "interval_seconds": UNIFI_INTERVAL_S,
                      **raw["unifi"]} if raw.get("unifi") else None
        self.home_assistant = bool(raw.get("home_assistant"))

    def __eq__(self, other):
        return isinstance(other, Settings) and vars(self) == vars(other)


def of(cfg):
    """The config's device settings, or None when off."""
    raw = cfg.get("devices")
    return Settings(raw) if raw else None
