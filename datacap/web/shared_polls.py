"""Fifty open dashboards cost about what one does: identical polls within SHARED_S share one answer.

A poll is identical to an earlier one when everything the app could look at is the same: the path
and query, every request header, the client's address and scheme, and the settings in force. The
first goes through the whole app, security checks included; the ones after it, for SHARED_S, get
its status, headers and body without entering Flask. While one request renews an answer that has
grown old, the identical ones arriving meanwhile still get the old one (one renewal at a time, not
fifty). Only GET /api/stats with a 200 is shared, and any other method (a start, a pause, a settings
change) forgets every shared answer when it is done, so a dashboard sees its own action at once.
"""
import time

SHARED_S = 0.1  # an answer may be this old: the dashboard polls once a second
PATHS = frozenset({"/api/stats"})


class SharedPolls:
    """WSGI middleware in front of the Flask app."""

    def __init__(self, app, settings, clock=time.monotonic):
        self.app, self.settings, self.clock = app, settings, clock
        # No lock: a request thread holding one would be switched out (serve.SWITCH_INTERVAL_S) and
        # the others would queue behind it. Single dict operations are atomic under the GIL; an
        # answer lost to a concurrent prune only costs one renewal.
        self._answers = {}  # key -> (when, status, headers, body)
        self._renewing = {}  # key -> the request renewing its answer
        self._pruned_at = 0.0
        self._actions = 0  # actions seen: an answer renewed across one is not kept

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "HEAD":
            return self.app(environ, start_response)
        if environ["REQUEST_METHOD"] != "GET":
            try:
                return self.app(environ, start_response)
            finally:  # once the action is done: a poll answered while it ran may not show it
                self._actions += 1
                self._answers = {}
        if environ.get("PATH_INFO") not in PATHS:
            return self.app(environ, start_response)
        key = self._key(environ)
        now = self.clock()
        answer = self._answers.get(key)
        if answer is None or now - answer[0] >= SHARED_S:
            renewing = self._renewing.setdefault(key, environ) is not environ
            if not renewing or answer is None:
                answer = self._renew(key, environ, now, renewing)
        start_response(answer[1], answer[2])
        return [answer[3]]

    def _renew(self, key, environ, now, renewing):
        actions = self._actions
        try:
            answer = self._answer(environ, now)
        finally:
            if not renewing:
                self._renewing.pop(key, None)
        if answer[1].startswith("200 ") and actions == self._actions:
            if now - self._pruned_at >= SHARED_S:  # old answers go once per SHARED_S, not per answer
                self._pruned_at = now
                self._answers = {k: a for k, a in list(self._answers.items()) if now - a[0] < SHARED_S}
            self._answers[key] = answer
        return answer

    def _key(self, environ):
        return (environ["PATH_INFO"], environ.get("QUERY_STRING", ""), environ.get("REMOTE_ADDR"),
                environ.get("wsgi.url_scheme"), id(self.settings()),
                tuple(sorted((k, v) for k, v in environ.items() if k.startswith("HTTP_"))))

    def _answer(self, environ, now):
        """(when, status, headers, body) of the app's own answer."""
        started = []
        chunks = self.app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return now, started[0][0], started[0][1], body
