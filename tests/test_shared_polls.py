"""Identical polls of /api/stats share one answer for a tenth of a second (datacap/web/shared_polls.py)."""
import threading

from datacap.web import create_app
from datacap.web.shared_polls import SHARED_S, SharedPolls


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class CountingApp:
    """A WSGI app that answers `status` and counts its calls; `gate` (an Event) holds it when set, for
    requests of the method `gated` only when that is set."""

    def __init__(self, status="200 OK"):
        self.calls, self.status, self.gate, self.gated, self.entered = 0, status, None, None, threading.Event()

    def __call__(self, environ, start_response):
        self.calls += 1
        self.entered.set()
        if self.gate is not None and self.gated in (None, environ["REQUEST_METHOD"]):
            self.gate.wait(5)
        start_response(self.status, [("Content-Type", "application/json")])
        return [f'{{"call": {self.calls}}}'.encode()]


def get(app, path="/api/stats", method="GET", query="", **headers):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1",
           "wsgi.url_scheme": "http", **{"HTTP_" + k.upper(): v for k, v in headers.items()}}
    seen = []
    body = b"".join(app(env, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[0], body


def shared(status="200 OK"):
    inner, clock, settings = CountingApp(status), FakeClock(), {"auth_token": None}
    return inner, clock, SharedPolls(inner, lambda: settings, clock=clock)


def test_identical_polls_share_an_answer_until_it_is_a_tenth_of_a_second_old():
    inner, clock, app = shared()
    assert get(app, host="h") == get(app, host="h") == ("200 OK", b'{"call": 1}')
    clock.now += SHARED_S - 0.01
    assert get(app, host="h")[1] == b'{"call": 1}'
    clock.now += 0.02
    assert get(app, host="h")[1] == b'{"call": 2}' and inner.calls == 2


def test_a_different_header_query_or_path_is_its_own_request():
    inner, clock, app = shared()
    get(app, host="h")
    get(app, host="h", authorization="Bearer x")
    get(app, host="h", cookie="datacap_session=y")
    get(app, host="h", query="since=5")
    get(app, "/api/usage", host="h")
    get(app, "/api/usage", host="h")
    assert inner.calls == 6


def test_an_error_answer_is_never_shared():
    inner, clock, app = shared("401 UNAUTHORIZED")
    assert get(app)[0] == get(app)[0] == "401 UNAUTHORIZED"
    assert inner.calls == 2


def test_any_action_forgets_the_shared_answers_but_a_head_does_not():
    inner, clock, app = shared()
    get(app)
    get(app, "/api/stats", method="HEAD")
    assert get(app)[1] == b'{"call": 1}'
    get(app, "/api/pause", method="POST")
    assert get(app)[1] == b'{"call": 4}'


def test_while_one_poll_renews_an_old_answer_the_others_get_the_old_one():
    inner, clock, app = shared()
    get(app)
    clock.now += 1
    inner.gate, inner.entered = threading.Event(), threading.Event()
    renewing = threading.Thread(target=get, args=(app,))
    renewing.start()
    assert inner.entered.wait(5)
    assert get(app)[1] == b'{"call": 1}' and inner.calls == 2  # not a second renewal
    inner.gate.set()
    renewing.join(5)
    assert get(app)[1] == b'{"call": 2}'


def test_an_answer_renewed_across_an_action_is_not_kept():
    inner, clock, app = shared()
    gate = inner.gate = threading.Event()
    renewing = threading.Thread(target=get, args=(app,))
    renewing.start()
    assert inner.entered.wait(5)
    inner.gate = None
    get(app, "/api/start", method="POST")  # the poll being renewed may predate the start
    gate.set()
    renewing.join(5)
    assert get(app)[1] == b'{"call": 3}'  # renewed after the action, not the answer from before it


def test_a_poll_answered_while_an_action_runs_is_not_kept_once_it_is_done():
    inner, clock, app = shared()
    inner.gate, inner.gated = threading.Event(), "POST"
    action = threading.Thread(target=get, args=(app, "/api/start", "POST"))
    action.start()
    assert inner.entered.wait(5)
    assert get(app)[1] == b'{"call": 2}'  # answered while the start is still under way
    inner.gate.set()
    action.join(5)
    assert get(app)[1] == b'{"call": 3}'  # not the answer from before the start was done


def test_the_real_app_shares_nothing_across_credentials(tmp_path):
    token = "correct-horse-battery-staple"
    c = create_app({"auth_token": token, "host": "0.0.0.0"}, tmp_path, tmp_path / "c.json").test_client()
    h = {"Host": "192.168.1.5:8000"}
    good = {**h, "Authorization": f"Bearer {token}"}
    assert c.get("/api/stats", headers=good).status_code == 200
    assert c.get("/api/stats", headers=h).status_code == 401  # right after a shared 200
    assert c.get("/api/stats", headers={**h, "Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert c.get("/api/stats", headers=good).get_json()["status"] == "idle"
