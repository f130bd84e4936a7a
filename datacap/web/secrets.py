"""Settings that are secrets: never shown by GET /api/config, kept when a save sends them back masked.

GET shows each as MASK (a notify URL as its scheme and MASK); PUT puts the current value back wherever
it receives exactly what GET showed, so saving the settings form never wipes a password it cannot see.
"""
import copy

MASK = "********"
SOURCE_SECRETS = ("community", "auth_key", "priv_key")
UNIFI_SECRETS = ("password", "api_key")  # devices.unifi


def _mask_url(url):
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def masked(cfg):
    """A copy of cfg fit to show: no token, no password, no notify URL's credentials, no SNMP secret."""
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "auth_token"}
    out["auth_token_set"] = bool(cfg.get("auth_token"))
    if isinstance(out.get("mqtt"), dict) and out["mqtt"].get("password"):
        out["mqtt"]["password"] = MASK
    if isinstance(out.get("notify_urls"), list):
        out["notify_urls"] = [_mask_url(u) if isinstance(u, str) else u for u in out["notify_urls"]]
    for src in out["sources"] if isinstance(out.get("sources"), list) else []:
        for key in SOURCE_SECRETS:
            if isinstance(src, dict) and src.get(key):
                src[key] = MASK
    unifi = (out.get("devices") or {}).get("unifi") if isinstance(out.get("devices"), dict) else None
    for key in UNIFI_SECRETS if isinstance(unifi, dict) else ():
        if unifi.get(key):
            unifi[key] = MASK
    return out


def restored(body, cfg):
    """body with every masked secret replaced by the current value it stands for."""
    body = copy.deepcopy(body)
    mqtt, current = body.get("mqtt"), cfg.get("mqtt") or {}
    if isinstance(mqtt, dict) and mqtt.get("password") == MASK:
        mqtt["password"] = current.get("password")
    urls, now = body.get("notify_urls"), cfg.get("notify_urls") or []
    if isinstance(urls, list):
        body["notify_urls"] = [now[i] if i < len(now) and u == _mask_url(now[i]) else u for i, u in enumerate(urls)]
    sources, old = body.get("sources"), cfg.get("sources") if isinstance(cfg.get("sources"), list) else []
    for i, src in enumerate(sources if isinstance(sources, list) else []):
        for key in SOURCE_SECRETS:
            if isinstance(src, dict) and src.get(key) == MASK and i < len(old):
                src[key] = old[i].get(key)
    unifi = body["devices"].get("unifi") if isinstance(body.get("devices"), dict) else None
    current_unifi = (cfg.get("devices") or {}).get("unifi") or {}
    for key in UNIFI_SECRETS if isinstance(unifi, dict) else ():
        if unifi.get(key) == MASK:
            unifi[key] = current_unifi.get(key)
    return body


def private(cfg):
    """True when config.json holds a secret and must stay 0600."""
    unifi = (cfg.get("devices") or {}).get("unifi") if isinstance(cfg.get("devices"), dict) else None
    if isinstance(unifi, dict) and any(unifi.get(k) for k in UNIFI_SECRETS):
        return True
    return bool(cfg.get("auth_token") or (cfg.get("mqtt") or {}).get("password") or cfg.get("notify_urls")
                or any(isinstance(s, dict) and any(s.get(k) for k in SOURCE_SECRETS)
                       for s in (cfg.get("sources") if isinstance(cfg.get("sources"), list) else [])))
