"""The config rules for `site` and `fleet_agent_url` (datacap/config.py calls these), and the site's name.

`site` names this installation wherever several are seen together: the `site` label of its series at
a central Prometheus, the dashboard's title, the Home Assistant device, reports and notifications.
null means the host name. `fleet_agent_url` is the local Prometheus agent that sends this site's
figures out; what it sends is counted as datacap's own use (datacap/fleet/telemetry.py).
"""
import re
import socket
from urllib.parse import urlparse

SITE_MAX_CHARS = 63
# Letters (any script), digits and the marks place names use: nothing a PromQL string, a YAML
# value or a Grafana variable would need escaped, so the name reads the same everywhere it goes.
_SITE = re.compile(r"\w(?:[\w .-]*[\w.])?")


def check_site(v):
    if v is None:
        return None
    if isinstance(v, str) and len(v) <= SITE_MAX_CHARS and _SITE.fullmatch(v):
        return None
    return (f"must be null (the host name) or a name of 1 to {SITE_MAX_CHARS} letters, digits, spaces, "
            f"'.', '-' or '_' (no space at either end), got {v!r}")


def check_agent_url(v):
    """null (no agent) or the agent's http(s) base URL on this machine, e.g. http://127.0.0.1:9090."""
    if v is None:
        return None
    u = urlparse(v) if isinstance(v, str) else None
    if u and u.scheme in ("http", "https") and u.hostname and u.path in ("", "/") and not u.query:
        return None
    return f"must be null or the agent's base URL like http://127.0.0.1:9090 (no path), got {v!r}"


def site_name(cfg):
    """This installation's name: `site`, else the host name."""
    return cfg.get("site") or socket.gethostname()
