"""config.json: defaults, validation with one clear message per bad key, loading."""
import difflib
import ipaddress
import json
import math
import os
from pathlib import Path
from urllib.parse import urlparse

from datacap.usage import lines
from datacap.usage import plan as planmod
from datacap.usage.sources import settings as sources_settings

from datacap.devices import settings as devices_settings
from datacap.notify import settings as notify_settings
from datacap.fleet import settings as fleet_settings

ROOT = Path(__file__).resolve().parent.parent  # the checkout: entry points, config.json, data/
DEFAULT_CONFIG_PATH = ROOT / "config.json"
DEFAULT_DATA_DIR = ROOT / "data"
EXIT_BAD_CONFIG = 2  # the supervisor never restarts a child that exits with this
EXIT_BUSY = 3  # the data folder is in use by a process that is not exiting: back off and retry
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

DEFAULTS = {
    "test_urls": [
        "https://speed.cloudflare.com/__down?bytes=1000000000",
        "https://proof.ovh.net/files/10Gb.dat",
        "http://speedtest.tele2.net/10GB.zip",
    ],
    "data_cap_gb": 1000,
    "billing_day": 1,
    "interfaces": "auto",
    "sources": "auto",
    "plan": None,
    "count": "both",
    "update_interval_seconds": 1,
    "throttle_threshold_percent": 50,
    "baseline_seconds": 10,
    "outage_give_up_minutes": 30,
    "streams": 4,
    "session_limit_gb": None,
    "stop_at_cap": True,
    "alert_thresholds_percent": [50, 75, 90, 100],
    "host": "127.0.0.1",
    "port": 8000,
    "auth_token": None,
    "trusted_proxies": [],
    "webhook_url": None,
    "notify_urls": [],
    "notify_outage_minutes": 10,
    "mqtt": None,
    "external_ip_url": None,
    "probe_interval_minutes": 60,
    "probe_budget_percent": 1,
    "lines": None,
    "site": None,
    "fleet_agent_url": None,
    "devices": None,
}


class ConfigError(ValueError):
    """A config that must not be used; str() names every bad key."""

    def __init__(self, errors):
        self.errors = errors  # {key: message}
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors.items()))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _http_url(v):
    if not isinstance(v, str):
        return False
    u = urlparse(v)
    return u.scheme in ("http", "https") and bool(u.hostname)


def _in_range(lo, hi, integer=False):
    kind = "a whole number" if integer else "a number"

    def check(v):
        ok = (_integer(v) if integer else is_number(v)) and lo <= v <= hi
        return None if ok else f"must be {kind} from {lo} to {hi}, got {v!r}"
    return check


def _positive(v):
    return None if is_number(v) and v > 0 else f"must be a number greater than 0, got {v!r}"


def _test_urls(v):
    if not isinstance(v, list) or not v:
        return f"must be a non-empty list of http/https URLs, got {v!r}"
    bad = [u for u in v if not _http_url(u)]
    return f"not an http/https URL: {', '.join(repr(u) for u in bad)}" if bad else None  # every bad one named


def _interfaces(v):
    if v == "auto":
        return None
    if isinstance(v, list) and v and all(isinstance(n, str) and n for n in v):
        return None
    return f'must be "auto" or a non-empty list of interface names, got {v!r}'


def _thresholds(v):
    if isinstance(v, list) and all(is_number(p) and 1 <= p <= 100 for p in v):
        return None
    return f"must be a list of percentages from 1 to 100, got {v!r}"


GB_RANGE = (0.001, 1_000_000)  # 1 MB to 1 PB: beyond it a value is a typo, and would break the arithmetic


def _session_limit(v):
    return None if v is None else _in_range(*GB_RANGE)(v)


def _bool(v):
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _host(v):
    return None if isinstance(v, str) and v and " " not in v else f"must be a host name or address, got {v!r}"


TOKEN_MIN_CHARS, TOKEN_MIN_DISTINCT = 16, 8
NEW_TOKEN_HINT = "run `python server.py --new-token` for a strong one"


def _token(v):  # never echo a secret
    if v is None:
        return None
    if not isinstance(v, str) or len(v) < TOKEN_MIN_CHARS:
        return f"must be null or a string of at least {TOKEN_MIN_CHARS} characters: {NEW_TOKEN_HINT}"
    if len(set(v)) < TOKEN_MIN_DISTINCT:
        return f"is too easy to guess (fewer than {TOKEN_MIN_DISTINCT} different characters): {NEW_TOKEN_HINT}"
    return None


def _trusted_proxies(v):
    """IP addresses of reverse proxies whose X-Forwarded-Proto/-For we believe."""
    if not isinstance(v, list):
        return f"must be a list of IP addresses, got {v!r}"
    for a in v:
        try:
            ipaddress.ip_address(a if isinstance(a, str) else "")
        except ValueError:
            return f"not an IP address: {a!r}"
    return None


def _optional_url(v):
    return None if v is None or _http_url(v) else f"must be null or an http/https URL, got {v!r}"


def _probe_interval(v):
    """Minutes between speed probes; null turns them off."""
    return None if v is None else _in_range(0.5, 44640)(v)


def _count(v):
    return None if v in ("both", "download") else f'must be "both" or "download", got {v!r}'


CHECKS = {
    "test_urls": _test_urls,
    "data_cap_gb": _in_range(*GB_RANGE),
    "billing_day": _in_range(1, 31, integer=True),
    "interfaces": _interfaces,
    "sources": sources_settings.check,
    "plan": planmod.check,
    "count": _count,
    "update_interval_seconds": _in_range(0.1, 3600),
    "throttle_threshold_percent": _in_range(1, 99),
    "baseline_seconds": _in_range(3, 3600),
    "outage_give_up_minutes": _in_range(1, 1440),
    "streams": _in_range(1, 64, integer=True),
    "session_limit_gb": _session_limit,
    "stop_at_cap": _bool,
    "alert_thresholds_percent": _thresholds,
    "host": _host,
    "port": _in_range(1, 65535, integer=True),
    "auth_token": _token,
    "trusted_proxies": _trusted_proxies,
    "webhook_url": _optional_url,
    "notify_urls": notify_settings.check_notify_urls,
    "notify_outage_minutes": notify_settings.check_outage_minutes,
    "mqtt": notify_settings.check_mqtt,
    "external_ip_url": _optional_url,
    "probe_interval_minutes": _probe_interval,
    "probe_budget_percent": _in_range(0, 100),
    "lines": lambda v: lines.check(v, CHECKS),
    "site": fleet_settings.check_site,
    "fleet_agent_url": fleet_settings.check_agent_url,
    "devices": devices_settings.check,
}
assert CHECKS.keys() == DEFAULTS.keys()


def validate(raw):
    """Return a complete config (defaults filled in) or raise ConfigError naming each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError({"config": "must be a JSON object"})
    errors = {}
    for key in raw:
        if key not in CHECKS:
            close = difflib.get_close_matches(key, CHECKS, n=1)
            errors[key] = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    merged = {**DEFAULTS, **{k: v for k, v in raw.items() if k in CHECKS}}
    for key, check in CHECKS.items():
        message = check(merged[key])
        if message:
            errors[key] = message
    if "host" not in errors and merged["host"] not in LOOPBACK_HOSTS and not merged["auth_token"]:
        errors["host"] = (f"listening on {merged['host']} lets the network reach datacap: set auth_token "
                          f"(16+ characters) first; {NEW_TOKEN_HINT}")
    if merged["lines"]:  # each line names its counter: the one-line keys would do nothing
        for key in ("sources", "interfaces"):
            if merged[key] != "auto" and key not in errors:
                errors[key] = (f'with lines, each line names its counter in its "source"; set {key} back to '
                               '"auto" or remove it')
    if errors:
        raise ConfigError(errors)
    merged["alert_thresholds_percent"] = sorted(set(merged["alert_thresholds_percent"]))
    return merged


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid JSON number")


def parse(text):
    """Parse and validate config text; ConfigError on bad JSON too."""
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ConfigError({"config": f"not valid JSON ({exc})"}) from None
    return validate(raw)


def load(path=None):
    """Load config from path (default ./config.json); a missing default file means defaults."""
    path = Path(path or os.environ.get("DATACAP_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if path == DEFAULT_CONFIG_PATH:
            return validate({})
        raise ConfigError({"config": f"file not found: {path}"}) from None
    except OSError as exc:
        raise ConfigError({"config": f"cannot read {path}: {exc.strerror}"}) from None
    return parse(text)
