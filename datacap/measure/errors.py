"""A stream's failure in a user's words (DNS lookup, refused, timed out, HTTP 404, TLS), per test URL.

The raw exception goes to the log only (streams.py logs it); the file and the dashboard carry
`describe(exc)`. The streams record each failure in a UrlErrors (one per pool, any thread).
"""
import errno
import http.client
import socket
import ssl
import threading
import time
import urllib.error
from datetime import datetime, timezone
from urllib.parse import urlsplit

RECENT_S = 60.0  # an error older than this (and bytes since) is history, not a problem now
ALL_DOWN = "No test server reachable — is the internet down?"

_ERRNO = {
    errno.ECONNREFUSED: "connection refused", errno.ECONNRESET: "connection reset by the server",
    errno.ENETUNREACH: "network unreachable", errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out", errno.ECONNABORTED: "connection aborted",
}


def _chain(exc):
    """The exception and what lies under it (URLError's reason, the context of a re-raise)."""
    seen = []
    while exc is not None and exc not in seen and len(seen) < 6:
        seen.append(exc)
        exc = exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException) \
            else exc.__cause__ or exc.__context__
    return seen


def _one(exc, host):
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {host or 'the name'} not found"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: the server's certificate is not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection dropped mid-download"
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    text = str(exc)
    if text.startswith("HTTP "):  # streams.StreamError("HTTP 404 Not Found")
        return text[:60]
    if text.startswith("connection closed after"):
        return "the connection dropped mid-download"
    if text == "empty response":
        return "the server sent an empty response"
    return None


def describe(exc, url=None):
    """A short phrase for what failed, never the raw exception text."""
    host = urlsplit(url).hostname if url else None
    for e in _chain(exc):
        found = _one(e, host)
        if found:
            return found
    return f"failed ({type(exc).__name__})"


class UrlErrors:
    """The latest failure of each test URL, with a count; safe to call from every stream thread."""

    def __init__(self, clock=time.monotonic, wall=time.time):
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._by_url = {}

    def record(self, url, exc):
        what = describe(exc, url)
        with self._lock:
            old = self._by_url.get(url, {})
            self._by_url[url] = {"url": url, "what": what, "count": old.get("count", 0) + 1, "at": self.clock(),
                                 "time": datetime.fromtimestamp(self.wall(), timezone.utc).isoformat(timespec="seconds")}

    def recent(self, since=None):
        """The errors newer than RECENT_S (and than `since`, a clock time of the last bytes), newest first."""
        now = self.clock()
        with self._lock:
            found = [dict(e) for e in self._by_url.values()
                     if now - e["at"] <= RECENT_S and (since is None or e["at"] >= since)]
        for e in found:
            del e["at"]
        return sorted(found, key=lambda e: e["time"], reverse=True)

    def all(self):
        with self._lock:
            return [{k: v for k, v in e.items() if k != "at"} for e in self._by_url.values()]


def problem(url_errors, urls, receiving):
    """One sentence for the dashboard: every URL failing is the internet, not the servers."""
    if receiving or not url_errors:
        return None
    if {e["url"] for e in url_errors} >= set(urls):
        return ALL_DOWN
    return None
