"""Where news goes: every `notify_urls` entry through Apprise, and `webhook_url` as datacap's own JSON POST.

`webhook_url` keeps its documented payload ({"event", "text", "content", "host", "time", "data"}),
which Slack (`text`), Discord (`content`) and scripts read. Apprise's json:// posts
{"version", "title", "message", "type"} and cannot add the event's data, so that one sender stays
hand-written; anyone who wants Apprise's format puts a json:// URL in notify_urls instead.
"""
import hashlib
import logging
import threading
from datetime import datetime, timezone

import requests

from datacap.fleet.settings import site_name
from datacap.notify import settings

log = logging.getLogger("notify")

TIMEOUT_S = 5.0


class _LastMessage(logging.Handler):
    """Apprise says why a send or a URL failed only in its log: keep the last line per thread, print none
    (its parse errors echo the URL, passwords included)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record):
        self.local.text = record.getMessage()

    def take(self):
        text, self.local.text = getattr(self.local, "text", None), None
        return text


_apprise_log = None


def _apprise():
    """Import Apprise on first use (children never need it) with its log routed to _LastMessage."""
    global _apprise_log
    import apprise
    if _apprise_log is None:
        _apprise_log = _LastMessage()
        logger = logging.getLogger("apprise")
        logger.addHandler(_apprise_log)
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    return apprise


def redacted(url):
    """A URL as it may be shown: scheme and host only."""
    scheme, _, rest = str(url).partition("://")
    host = rest.rsplit("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{host}/…" if rest else "…"


def check_url(url):
    """None if Apprise can send to `url`, else why not (never echoing the URL's secrets)."""
    if not isinstance(url, str) or "://" not in url:
        return "is not an Apprise URL (scheme://...)"
    apprise = _apprise()
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    _apprise_log.take()
    if plugin is None:
        return f"{url.split('://', 1)[0]}:// URL is not one Apprise understands (a missing token or host?)"
    return None


settings.url_check = check_url  # this process sends, so it checks URLs as Apprise will read them


def destination_id(kind, url):
    """A stable name for a destination that holds no secret: a hash of its URL."""
    return kind + ":" + hashlib.sha256(url.encode()).hexdigest()[:12]


class AppriseDestination:
    """One notify_urls entry; one Apprise object each, so one failing service never repeats the others."""

    def __init__(self, url):
        apprise = _apprise()
        self.id, self.label = destination_id("apprise", url), redacted(url)
        self.apprise, self.types = apprise.Apprise(), apprise.NotifyType
        self.apprise.add(url)

    def send(self, news):
        """None on success, else the reason."""
        ok = self.apprise.notify(body=news.text, title=news.title,
                                 notify_type=self.types.WARNING if news.warning else self.types.INFO)
        reason = _apprise_log.take()
        return None if ok else (reason or "Apprise could not send")


class WebhookDestination:
    """webhook_url: the JSON payload datacap has always posted."""

    def __init__(self, url, host, post=requests.post, site=None):
        self.id, self.label = destination_id("webhook", url), redacted(url)
        self.url, self.host, self.post, self.site = url, host, post, site or host

    def send(self, news):
        payload = {"event": news.kind, "text": news.text, "content": news.text, "host": self.host, "site": self.site,
                   "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": news.data}
        try:
            r = self.post(self.url, json=payload, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}"
        return None if r.status_code < 300 else f"HTTP {r.status_code}"


def from_config(cfg, host, post=requests.post):
    """The destinations a config names, webhook first."""
    out = [WebhookDestination(cfg["webhook_url"], host, post, site_name(cfg))] if cfg.get("webhook_url") else []
    return out + [AppriseDestination(u) for u in cfg.get("notify_urls") or []]
