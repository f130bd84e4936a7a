"""The config rules for `mqtt`, `notify_urls` and `notify_outage_minutes` (datacap/config.py calls these)."""
import difflib
import re

MQTT_DEFAULTS = {"host": None, "port": None, "username": None, "password": None, "tls": False,
                 "topic_prefix": "datacap", "discovery_prefix": "homeassistant", "commands": False}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
_TOPIC = re.compile(r"^[^#+\s/]+(/[^#+\s/]+)*$")  # levels without wildcards, no leading/trailing '/'


def _mqtt_field(key, v):
    if key == "host":
        ok = isinstance(v, str) and v and " " not in v
        return None if ok else f"must be a broker host name or address, got {v!r}"
    if key == "port":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535)
        return None if ok else f"must be null (1883, or 8883 with tls) or a whole number from 1 to 65535, got {v!r}"
    if key == "username":
        return None if v is None or isinstance(v, str) else f"must be null or a string, got {v!r}"
    if key == "password":
        return None if v is None or isinstance(v, str) else "must be null or a string"  # never echo a secret
    if key in ("tls", "commands"):
        return None if isinstance(v, bool) else f"must be true or false, got {v!r}"
    return None if isinstance(v, str) and _TOPIC.match(v) else (
        f"must be MQTT topic levels without '+', '#', spaces or a leading/trailing '/', got {v!r}")


def check_mqtt(v):
    """null (off) or {"host": ..., ...}; one message naming each bad field."""
    if v is None:
        return None
    if not isinstance(v, dict):
        return 'must be null or an object like {"host": "192.168.1.10"}'
    problems = []
    for key in v:
        if key not in MQTT_DEFAULTS:
            close = difflib.get_close_matches(key, MQTT_DEFAULTS, n=1)
            problems.append(f"{key}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
    merged = {**MQTT_DEFAULTS, **v}
    for key in MQTT_DEFAULTS:
        message = _mqtt_field(key, merged[key])
        if message:
            problems.append(f"{key} {message}")
    if merged["password"] is not None and merged["username"] is None:
        problems.append("password is set without a username")
    return "; ".join(problems) or None


def mqtt_settings(cfg):
    """The mqtt object with defaults filled in, or None when MQTT is off."""
    raw = cfg.get("mqtt")
    if not raw:
        return None
    out = {**MQTT_DEFAULTS, **raw}
    out["port"] = out["port"] or (8883 if out["tls"] else 1883)
    return out


def url_shape(url):
    """The check where Apprise is not loaded: the children, which never send, keep its ~30 MB."""
    return None if isinstance(url, str) and _URL.match(url) else "is not an Apprise URL (scheme://...)"


url_check = url_shape  # importing datacap.notify.destinations (the server does) installs Apprise's own parser


def check_notify_urls(v):
    """A list of URLs Apprise can send to; the bad one is named by position and scheme, never echoed."""
    if not isinstance(v, list):
        return f"must be a list of Apprise URLs (ntfys://..., gotify://..., json://...), got {type(v).__name__}"
    for i, url in enumerate(v, 1):
        message = url_check(url)
        if message:
            return f"entry {i}: {message}"
    return None


def check_outage_minutes(v):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 1440
    return None if ok else f"must be a number of minutes from 1 to 1440, got {v!r}"
